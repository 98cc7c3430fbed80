from searchlearn.problems.base import DatasetFormatError, Problem, ProblemSource, read_problems, write_problems

__all__ = ["DatasetFormatError", "Problem", "ProblemSource", "read_problems", "write_problems"]
