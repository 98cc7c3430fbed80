from searchlearn.problems.base import DatasetFormatError, Problem, read_problems, write_problems

__all__ = ["DatasetFormatError", "Problem", "read_problems", "write_problems"]
