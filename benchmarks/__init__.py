"""fastopt's asv benchmark suites, one file per area (see README "Benchmarks")."""
