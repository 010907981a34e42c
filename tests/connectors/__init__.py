"""Tests of the built-in connectors against their vendor emulators, over real HTTP."""
