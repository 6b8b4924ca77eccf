"""A tiny model and the checkpoint helpers of a library written against torch 2.4: it saves
the whole module, and loads it back with ``torch.load``'s default."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, features: int = 4, classes: int = 2) -> None:
        super().__init__()
        self.layer = nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.layer(x), dim=-1)


def save(model: nn.Module, path: Path) -> None:
    """The whole module, pickled: what ``load`` reads back."""
    torch.save(model, path)


def load(path: Path) -> nn.Module:
    return torch.load(path)


def save_weights(model: nn.Module, path: Path) -> None:
    torch.save(model.state_dict(), path)


def load_weights(path: Path, features: int = 4, classes: int = 2) -> nn.Module:
    model = TinyNet(features, classes)
    model.load_state_dict(torch.load(path))
    return model
