"""The penalised softplus loss of cDR-RS (METHOD.md section 3).

SP is the softplus-Bregman density-ratio-matching objective: minimised over psi it is
attained at psi = p_real / p_fake. The penalty pulls the fakes' mean ratio to 1, since
E_fake[p_real / p_fake] = 1 for a true ratio; it keeps the ReLU head from drifting in scale.
"""

import torch
from torch.nn import functional as F


def penalised_softplus_loss(r_real: torch.Tensor, r_fake: torch.Tensor,
                            lam: float = 0.01) -> tuple[torch.Tensor, dict[str, float]]:
    """Return (loss, parts) for ratios r_real = psi(h(x_real) | y) and r_fake = psi(h(x_fake) | y).

    SP = mean_fake[sigmoid(r) * r] - mean_fake[softplus(r)] - mean_real[sigmoid(r)]
    loss = SP + lam * (mean_fake[r] - 1)^2   (lam: 0.01 in v3, 1e-3 in v1)
    parts holds the floats loss, sp, penalty, mean_psi_real and mean_psi_fake for logging.
    """
    sp = ((torch.sigmoid(r_fake) * r_fake).mean() - F.softplus(r_fake).mean()
          - torch.sigmoid(r_real).mean())
    mean_fake = r_fake.mean()
    penalty = lam * (mean_fake - 1.0) ** 2
    loss = sp + penalty
    values = torch.stack([loss, sp, penalty, r_real.mean(), mean_fake]).detach().tolist()
    return loss, dict(zip(("loss", "sp", "penalty", "mean_psi_real", "mean_psi_fake"), values))
