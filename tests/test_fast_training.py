"""Fast training (issue 15): batched crops and flips, batches indexed out of tensors held on the
device, and the channels_last / bf16 / compile options, checked on the CPU with tiny models."""
import numpy as np
import pytest
import torch

from neff import NeffError
from neff.data import image_dataset, load_dataset, tensor_batches
from neff.models import build_model
from neff.train import TrainConfig, augment_images, evaluate, train


def per_image_augmentation(inputs, generator, fill):
    """The crops and flips written out image by image: pad each channel with its fill value,
    cut the window at the drawn shift, flip it when drawn."""
    size = inputs.shape[-1]
    pad = max(1, size // 8)
    shifts = torch.randint(0, 2 * pad + 1, (len(inputs), 2), generator=generator).tolist()
    flips = (torch.rand(len(inputs), generator=generator) < 0.5).tolist()
    out = []
    for image, (dy, dx), flip in zip(inputs, shifts, flips):
        padded = torch.stack([torch.nn.functional.pad(channel, (pad,) * 4, value=value)
                              for channel, value in zip(image, fill)])
        crop = padded[:, dy:dy + size, dx:dx + size]
        out.append(crop.flip(-1) if flip else crop)
    return torch.stack(out)


@pytest.mark.parametrize("size, fill", [(8, None), (32, (-1.5, 0.25, 2.0))])
def test_batched_augmentation_equals_the_per_image_reference(size, fill):
    """Same draws, same images to the last bit, and the generator left where the reference
    leaves it (so the next batch, and a resumed run, draw alike)."""
    images = torch.randn(40, 3, size, size, generator=torch.Generator().manual_seed(1))
    ours, theirs = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    out = augment_images(images, ours, fill)
    assert out.is_contiguous() and torch.equal(out, per_image_augmentation(images, theirs, fill or (0.0,) * 3))
    assert torch.equal(torch.rand(3, generator=ours), torch.rand(3, generator=theirs))


@pytest.mark.parametrize("seed", [None, 0, 7])
def test_tensor_batches_are_the_loaders(seed):
    data = load_dataset("digits", subset=150)
    ours = list(tensor_batches(data.train.tensors, 32, seed))
    theirs = list(data.loader("train", 32, shuffle=seed is not None, seed=seed or 0))
    assert len(ours) == len(theirs) == 5
    assert all(torch.equal(a, b) for ours_batch, theirs_batch in zip(ours, theirs)
               for a, b in zip(ours_batch, theirs_batch))


@pytest.mark.parametrize("setting, message", [
    ({"precision": "fp16"}, "precision='fp16' is unknown; use 'fp32' or 'bf16'"),
    ({"channels_last": "yes"}, "channels_last='yes' is not a flag; use True or False"),
    ({"compile": 1}, "compile=1 is not a flag; use True or False"),
])
def test_bad_fast_training_settings_are_refused(setting, message):
    with pytest.raises(NeffError, match=message):
        TrainConfig(**setting)



def test_evaluation_sums_on_the_device_as_python_floats_did():
    """Loss x batch size summed in float64 on the device: the mean of the metrics rows to the
    last bit as summing ``float(loss) * len(batch)`` gave before."""
    data = load_dataset("digits", subset=300)
    torch.manual_seed(0)
    model, loss_fn = build_model("mlp", 10, (1, 8, 8), width=8, depth=1), data.loss_fn()
    batches = list(tensor_batches(data.train.tensors, 7))
    with torch.no_grad():
        expected = sum(float(loss_fn(model(x), y)) * len(x) for x, y in batches) / 300
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches) / 300
    assert evaluate(model, batches, loss_fn, "cpu") == (expected, correct)

def tiny_images():
    """96 train and 32 test 8 x 8 RGB images (random pixels, 4 classes) as CIFAR is read."""
    rng = np.random.default_rng(0)
    split = lambda count: (rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8),  # noqa: E731
                           rng.integers(0, 4, count))
    return image_dataset("tiny", split(96), split(32), 4)


def tiny_run(hook=None, device="cpu", **settings):
    """Two epochs of a small CNN with crops on tiny_images(); ``hook(module, inputs, outputs)``
    sees every forward pass. Returns the rows and the model."""
    data = tiny_images()
    torch.manual_seed(0)
    model = build_model("convnet_depth", 4, data.input_shape, width=4, depth=1)
    if hook is not None:
        model.register_forward_hook(hook)
    config = TrainConfig(epochs=2, batch_size=32, lr=0.05, augment=True, **settings)
    return train(model, data, config, device=device), model


def test_channels_last_leaves_a_cpu_run_as_it_was():
    rows, model = tiny_run(channels_last=True)
    plain, plain_model = tiny_run()
    assert rows == plain and model.features[0].weight.is_contiguous()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), plain_model.parameters()))


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_on_a_gpu_channels_last_lays_out_model_and_every_batch():
    layouts = set()
    rows, model = tiny_run(lambda m, args, out: layouts.add(
        (m.training, args[0].is_contiguous(memory_format=torch.channels_last))), "cuda", channels_last=True)
    assert layouts == {(True, True), (False, True)}  # augmented training batches too
    assert model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain, _ = tiny_run()
    assert rows[-1]["train_loss"] == pytest.approx(plain[-1]["train_loss"], rel=1e-3)


@cuda
def test_on_a_gpu_batches_and_crops_are_the_cpus():
    images = torch.randn(40, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    crops = [augment_images(x, torch.Generator().manual_seed(5), (-1.5, 0.25, 2.0)) for x in (images, images.cuda())]
    assert crops[1].is_cuda and torch.equal(crops[1].cpu(), crops[0])
    labels = torch.arange(40)
    for cpu, gpu in zip(tensor_batches((images, labels), 16, 3), tensor_batches((images.cuda(), labels.cuda()), 16, 3)):
        assert all(torch.equal(a, b.cpu()) for a, b in zip(cpu, gpu))


def test_bf16_autocasts_the_training_steps_only():
    dtypes = set()
    rows, model = tiny_run(lambda m, args, out: dtypes.add((m.training, out.dtype)), precision="bf16")
    assert dtypes == {(True, torch.bfloat16), (False, torch.float32)}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    plain, _ = tiny_run()
    assert rows[-1]["train_loss"] != plain[-1]["train_loss"]
    assert rows[-1]["train_loss"] == pytest.approx(plain[-1]["train_loss"], rel=0.05)


def test_compile_wraps_the_model_for_the_training_steps(monkeypatch):
    """torch.compile itself takes about a minute on a CPU; this checks what train hands it and
    that the compiled module runs every training step and no evaluation."""
    calls = []

    def compiled(model):
        def forward(inputs):
            calls.append(model.training)
            return model(inputs)
        return forward

    monkeypatch.setattr(torch, "compile", compiled)
    tiny_run()
    assert calls == []
    rows, _ = tiny_run(compile=True)
    assert calls == [True] * 6  # 2 epochs x 3 batches of 32
    plain, _ = tiny_run()
    assert rows == plain


def test_training_speed_benchmark_runs_both_paths():
    """bench/train_speed on a few tiny images: both paths train and are timed, and the accuracy
    comparison runs (its numbers come from a GPU)."""
    from bench.train_speed import accuracy, speed, synthetic
    models, splits, cpu = {"cnn": ("convnet_depth", {"width": 4, "depth": 0})}, synthetic(64), torch.device("cpu")
    rows = speed(models, {"fp32": {}}, splits, 1, cpu, 0)
    assert [row["path"] for row in rows] == ["DataLoader (0 workers)", "neff fp32"] and rows[0]["speedup"] == 1
    (row,) = accuracy(models, splits, 10, 1, 1, cpu, 0)
    assert 0 <= row["dataloader"] <= 1 and 0 <= row["neff"] <= 1
