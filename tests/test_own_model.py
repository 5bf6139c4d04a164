"""Models and data nobody here wrote: dict batches, several inputs, tuple and dict outputs,
attention, parameter groups; each product against a dense Hessian built here by hand."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

import neff
from neff.errors import NeffError


class TinyTransformer(nn.Module):
    """A sequence classifier taking Hugging Face-style keyword inputs."""

    def __init__(self, vocab=10, dim=4, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, 2, 8, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return {"logits": self.head((hidden * mask).sum(1) / mask.sum(1))}


class TwoInputs(nn.Module):
    """Outputs from two inputs of different shapes, returned with an extra tensor."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(2, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x, context):
        hidden = torch.tanh(self.a(x) + self.b(context))
        return self.out(hidden), hidden


def dict_batches(sizes=(6, 4), length=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for size in sizes:
        mask = torch.ones(size, length, dtype=torch.long)
        mask[: size // 2, -2:] = 0  # padded sequences
        batches.append({"input_ids": torch.randint(0, 10, (size, length), generator=generator),
                        "attention_mask": mask, "labels": torch.randint(0, 3, (size,), generator=generator)})
    return batches


def dense_by_hand(model, batch_losses):
    """The Hessian of sum_b |b| L_b / N in all parameters, L_b computed by ``batch_losses``
    from named parameters (size, loss) per batch, by torch.autograd.functional.hessian."""
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for _, p in model.named_parameters()])

    def loss(vector):
        params = dict(zip(names, (piece.reshape(shape) for piece, shape in
                                  zip(vector.split([s.numel() for s in shapes]), shapes))))
        pairs = batch_losses(params)
        return sum(size * value for size, value in pairs) / sum(size for size, _ in pairs)
    with sdpa_kernel(SDPBackend.MATH):  # the fused attention kernels have no double backward
        return torch.autograd.functional.hessian(loss, flat)


def test_transformer_on_dict_batches_against_a_dense_hessian():
    """An nn.TransformerEncoder classifier fed Hugging Face-style dict batches (labels among the
    inputs, dict outputs with logits, padding masks, unequal batches): H v and the GGN's
    products equal the dense matrices built here, on the one-vector (autograd) and the block
    (torch.func) paths, whose fused attention kernels have no double backward."""
    torch.manual_seed(0)
    model, batches = TinyTransformer().double(), dict_batches()
    loss_fn = nn.CrossEntropyLoss()

    def batch_losses(params):
        return [(len(b["labels"]), loss_fn(functional_call(model, params, (), {"input_ids": b["input_ids"],
                "attention_mask": b["attention_mask"]})["logits"], b["labels"])) for b in batches]
    dense = dense_by_hand(model, batch_losses)
    op = neff.HessianOperator(model, loss_fn, batches)
    block = torch.randn(op.num_params, 3, dtype=torch.float64)
    assert torch.allclose(op.matvec(block[:, 0]), dense @ block[:, 0], atol=1e-10)
    blocks = neff.HessianOperator(model, loss_fn, batches)
    blocks.vectorise = True  # as on a GPU
    assert torch.allclose(blocks.matmat(block), dense @ block, atol=1e-10)
    ggn = neff.GGNOperator(model, loss_fn, batches)
    assert torch.allclose(ggn.matmat(block), ggn.dense() @ block, atol=1e-10)
    with torch.no_grad():
        assert abs(op.value() - float(sum(n * v for n, v in batch_losses(dict(model.named_parameters())))) / 10) < 1e-12


def test_two_inputs_and_a_tuple_output():
    """A model with two positional inputs returning (outputs, hidden): refused in one sentence
    naming output_fn, then correct with output_fn and with a batch_fn for its own batch format."""
    torch.manual_seed(1)
    model = TwoInputs().double()
    x, context, y = torch.randn(7, 3).double(), torch.randn(7, 2).double(), torch.randn(7, 2).double()
    batches = [((x[:4], context[:4]), y[:4]), ((x[4:], context[4:]), y[4:])]
    with pytest.raises(NeffError, match=r"returns a tuple of 2 \(Tensor, Tensor\), not a tensor; pass output_fn="):
        neff.HessianOperator(model, nn.MSELoss(), batches)

    def batch_losses(params):
        return [(len(t), nn.functional.mse_loss(functional_call(model, params, inputs)[0], t))
                for inputs, t in batches]
    dense = dense_by_hand(model, batch_losses)
    op = neff.HessianOperator(model, nn.MSELoss(), batches, output_fn=lambda out: out[0])
    assert torch.allclose(op.dense(), dense, atol=1e-12)
    v = torch.randn(op.num_params, dtype=torch.float64)
    assert torch.allclose(op.matvec(v), dense @ v, atol=1e-12)
    own_format = [{"x": a, "c": c, "y": t} for (a, c), t in batches]
    adapted = neff.HessianOperator(model, nn.MSELoss(), own_format, output_fn=lambda out: out[0],
                                   batch_fn=lambda b: ({"x": b["x"], "context": b["c"]}, b["y"]))
    assert torch.allclose(adapted.matvec(v), dense @ v, atol=1e-12)


def test_parameter_groups_are_the_diagonal_blocks():
    """CurvatureOperator.groups gives one operator per named group, each the group's diagonal
    block of the whole Hessian; the estimators take the dict and return a result per group,
    with per-group arguments and checkpoint files."""
    torch.manual_seed(2)
    model = TwoInputs().double()
    x, context, y = torch.randn(9, 3).double(), torch.randn(9, 2).double(), torch.randn(9, 2).double()
    data = [((x, context), y)]
    kwargs = dict(output_fn=lambda out: out[0])
    whole = neff.HessianOperator(model, nn.MSELoss(), data, **kwargs).dense()
    groups = neff.HessianOperator.groups(model, nn.MSELoss(), data, {"inputs": ["a.*", "b.*"], "out": ["out.*"]},
                                         **kwargs)
    assert list(groups) == ["inputs", "out"]
    assert torch.allclose(groups["inputs"].dense(), whole[:28, :28], atol=1e-12)
    assert torch.allclose(groups["out"].dense(), whole[28:, 28:], atol=1e-12)
    tops = neff.top_eigenpairs(groups, k={"inputs": 3, "out": 2}, tol=1e-8)
    for name, block in (("inputs", whole[:28, :28]), ("out", whole[28:, 28:])):
        # distinct eigenvalues: the last layer's block repeats each once per output
        exact = np.unique(torch.linalg.eigvalsh(block).numpy().round(9))[::-1][: len(tops[name].eigenvalues)]
        assert len(tops[name].eigenvalues) == {"inputs": 3, "out": 2}[name]
        assert abs(tops[name].eigenvalues - exact).max() < 1e-8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimates = neff.estimate_effective_dimension(groups, z=0.1, eigen=tops)
    assert set(estimates) == {"inputs", "out"} and estimates["out"].num_params == 10


def test_checkpoints_are_kept_per_group(tmp_path):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    data = [(torch.randn(8, 3).double(), torch.randn(8, 1).double())]
    groups = neff.HessianOperator.groups(model, nn.MSELoss(), data, {"first": ["0.*"], "last": ["2.*"]})
    neff.top_eigenpairs(groups, k=2, tol=1e-8, checkpoint=tmp_path / "run.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.first.pt", "run.last.pt"]


def test_data_a_model_cannot_take_is_one_sentence():
    """A model built for other inputs and float class labels are refused when the operator is
    built, each in one sentence naming the fix."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).double()
    images = torch.randn(5, 1, 4, 4).double()
    with pytest.raises(NeffError, match=r"the model fails on the data's inputs \(a tensor of shape \(5, 1, 4, 4\).*"
                                        r"build the model for this data"):
        neff.HessianOperator(model, nn.CrossEntropyLoss(), [(images, torch.zeros(5, dtype=torch.long))])
    inputs = torch.randn(5, 1, 8, 8).double()
    with pytest.raises(NeffError, match=r"CrossEntropyLoss takes integer class labels but the targets are "
                                        r"torch.float64 .*targets.long\(\)"):
        neff.HessianOperator(model, nn.CrossEntropyLoss(), [(inputs, torch.tensor([0.0, 1, 2, 3, 4]))])
    with pytest.raises(NeffError, match=r"a batch is a tuple of 3 .*pass batch_fn="):
        neff.HessianOperator(model, nn.CrossEntropyLoss(), [(inputs, inputs, inputs)])
