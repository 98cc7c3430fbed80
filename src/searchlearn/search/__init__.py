"""Search algorithms, one per module, all behind `SearchAlgorithm.search(...)`."""

from searchlearn.search.base import Candidate, SearchAlgorithm, SearchBudget, SearchResult
from searchlearn.search.beam import BeamSearch
from searchlearn.search.best_of_n import BestOfN
from searchlearn.search.dvts import DVTS
from searchlearn.search.mcts import MCTS
from searchlearn.search.selection import SELECTIONS, select

# Config name -> implementation. A new algorithm is one new module plus one line here.
ALGORITHMS: dict[str, type] = {
    "best_of_n": BestOfN,
    "beam_search": BeamSearch,
    "dvts": DVTS,
    "mcts": MCTS,
}

__all__ = ["ALGORITHMS", "DVTS", "MCTS", "SELECTIONS", "BeamSearch", "BestOfN", "Candidate", "SearchAlgorithm",
           "SearchBudget", "SearchResult", "select"]
