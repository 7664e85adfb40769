"""Resource limits of one run. Exceeding any of them ends the run with InterpreterError(kind="limit")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_steps: int = 100_000  # statements executed + comprehension iterations
    max_loop_iterations: int = 10_000  # iterations of any single for loop / comprehension generator
    max_value_size: int = 1_000_000  # chars of a string, elements of a container
    wall_time_seconds: float = 5.0  # interpreter time; time spent inside host.call_tool is not counted
    # cumulative string chars + 32 per container slot created by the program (a memory bound, ~ bytes)
    max_total_allocation: int = 64_000_000
    max_int_bits: int = 65_536  # size of any integer an operator, int(), sum() or pow() produces
    max_nesting_depth: int = 100  # AST nesting of the source and nesting of values
    max_output_chars: int = 100_000  # captured print() output (truncated beyond, not an error)


DEFAULT_LIMITS = Limits()
