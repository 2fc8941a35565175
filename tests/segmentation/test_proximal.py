"""FedProx's proximal term in the trainer's loss."""

from __future__ import annotations

import pytest
import torch

from pathloop.client.errors import ConfigError
from pathloop.client.segmentation import TINY
from pathloop.client.segmentation.trainer import ProximalLoss


def test_the_proximal_term_grows_with_the_distance_from_the_start_weights() -> None:
    torch.manual_seed(0)
    network = torch.nn.Linear(4, 2)
    loss = ProximalLoss(torch.nn.MSELoss(), network, mu=0.5)
    x, y = torch.randn(8, 4), torch.randn(8, 2)
    network.train()
    assert loss(network(x), y).item() == pytest.approx(torch.nn.MSELoss()(network(x), y).item())
    with torch.no_grad():
        for p in network.parameters():
            p.add_(0.1)
    plain = torch.nn.MSELoss()(network(x), y).item()
    n = sum(p.numel() for p in network.parameters())  # every parameter moved by 0.1
    assert loss(network(x), y).item() == pytest.approx(plain + 0.25 * n * 0.01, rel=1e-5)
    network.eval()  # nnU-Net's validation steps see the plain loss
    assert loss(network(x), y).item() == pytest.approx(plain)


def test_a_negative_mu_is_refused() -> None:
    with pytest.raises(ConfigError, match="proximal_mu must be >= 0"):
        TINY.with_overrides(proximal_mu=-1.0)
