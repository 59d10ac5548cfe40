"""What a figure function returns, and how it says that it has nothing to draw."""
import dataclasses


class NoData(Exception):
    """Raised by a figure function when the result set holds nothing for it."""


@dataclasses.dataclass
class Outcome:
    name: str
    title: str
    files: list = dataclasses.field(default_factory=list)  # file names in the output directory
    skipped: str = ""  # why there is no figure, if there is none
    caption: str = ""  # what the figure shows and how it was chosen, for the report
