import torch

import tinynet


def test_forward_gives_probabilities():
    out = tinynet.TinyNet()(torch.ones(3, 4))
    assert out.shape == (3, 2)
    assert torch.allclose(out.sum(dim=-1), torch.ones(3))


def test_whole_model_survives_a_reload(tmp_path):
    model = tinynet.TinyNet()
    tinynet.save(model, tmp_path / "model.pt")
    again = tinynet.load(tmp_path / "model.pt")
    x = torch.randn(2, 4)
    assert torch.equal(model(x), again(x))


def test_weights_survive_a_reload(tmp_path):
    model = tinynet.TinyNet()
    tinynet.save_weights(model, tmp_path / "weights.pt")
    again = tinynet.load_weights(tmp_path / "weights.pt")
    x = torch.randn(2, 4)
    assert torch.equal(model(x), again(x))
