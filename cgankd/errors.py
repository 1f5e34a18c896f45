"""The one exception type users see for bad input.

Every message is a single line that names the file, key or value at fault, so a failed
Snakemake job's log says what to fix without a traceback hunt.
"""


class CgankdInputError(ValueError):
    """Bad input: a config value, a data file, a key or a label the pipeline cannot use."""

    def __init__(self, message: str):
        # Collapse accidental newlines: one clear line is the contract.
        super().__init__(" ".join(str(message).split()))
