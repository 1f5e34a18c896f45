"""Device choice in one place: CUDA when present, CPU otherwise, same config on both."""

import torch


def pick_device(requested: str = "auto") -> torch.device:
    """Return the torch device for ``requested`` ("auto", "cpu", "cuda" or "cuda:N").

    "auto" picks CUDA when a GPU is visible; asking for CUDA on a machine without one falls
    back to CPU rather than failing, so one config runs on a laptop and on a GPU node.
    """
    if requested == "auto" or requested.startswith("cuda"):
        if torch.cuda.is_available():
            return torch.device("cuda" if requested == "auto" else requested)
        return torch.device("cpu")
    return torch.device(requested)


def set_threads(n: int | None) -> None:
    """Use ``n`` intra-op CPU threads (Snakemake passes the rule's ``threads``)."""
    if n is not None and n > 0:
        torch.set_num_threads(int(n))


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch (CPU and CUDA) and return a CPU generator for explicit sampling."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)
