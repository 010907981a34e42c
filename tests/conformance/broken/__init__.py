"""Deliberately broken connectors, one defect each: the conformance suite must fail each one."""
