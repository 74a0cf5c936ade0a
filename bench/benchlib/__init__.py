"""bench/benchlib: the parts of bench/bench.py. common (paths, log), servers (processes, the
servers under test, the load generator), scenarios (what is measured, one measurement), report
(the table)."""
