"""Search algorithms, one per module, all behind `SearchAlgorithm.search(...)`."""

from searchlearn.search.base import Candidate, SearchAlgorithm, SearchBudget, SearchResult
from searchlearn.search.best_of_n import BestOfN
from searchlearn.search.selection import SELECTIONS, select

# Config name -> implementation. A new algorithm is one new module plus one line here.
ALGORITHMS: dict[str, type] = {
    "best_of_n": BestOfN,
}

__all__ = ["ALGORITHMS", "SELECTIONS", "BestOfN", "Candidate", "SearchAlgorithm", "SearchBudget",
           "SearchResult", "select"]
