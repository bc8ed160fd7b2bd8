"""GPU checks (`pytest -m gpu`), skipped where CUDA is absent: every registered model and the
training loop run on CUDA with mixed precision and channels_last."""
import pytest
import torch
from torch import nn

from convnets import data, models, train

pytestmark = pytest.mark.gpu


def sample_input(name: str, batch: int = 2) -> torch.Tensor:
    """An input of the size the model registered (convnets.models.model_input_size)."""
    return torch.randn(batch, *models.model_input_size(name))


@pytest.fixture
def no_tf32():
    """Full fp32 matmuls and convolutions for a comparison with the CPU; the settings are
    restored afterwards, so later tests run as configured."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("name", models.list_models())
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_model_on_cuda_amp_channels_last(name, amp, no_tf32):
    torch.manual_seed(0)
    net = models.create_model(name)
    x = sample_input(name)
    net = net.cuda().to(memory_format=torch.channels_last).train()
    xc = x.cuda().contiguous(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    with torch.autocast("cuda", dtype=dtype):
        out = net(xc)
    logits = out[0] if isinstance(out, (tuple, list)) else out
    assert logits.shape[0] == x.shape[0] and torch.isfinite(logits.float()).all()
    logits.float().sum().backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: parameters without gradient on CUDA: {missing[:5]}"
    # eval output on the GPU (fp32) agrees with the CPU
    net_cpu = models.create_model(name)
    net_cpu.load_state_dict({k: v.float().cpu() for k, v in net.state_dict().items()})
    with torch.no_grad():
        ref = net_cpu.eval()(x)
        got = net.eval()(xc).float().cpu()
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("amp", [False, "bf16", "fp16"])
def test_fit_on_cuda(amp):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    X = torch.rand(512, 1, 28, 28, generator=g)
    y = (X.mean(dim=(1, 2, 3)) > X.mean()).long()  # a learnable rule
    loader = data.make_loader(X, y, batch_size=64, pin_memory=True)
    net = models.simple_cnn(num_classes=2)
    h = train.fit(net, loader, loader, epochs=5, lr=2e-3, device="cuda", amp=amp, channels_last=True, verbose=False)
    assert next(net.parameters()).device.type == "cuda"
    assert h.train_loss[-1] < h.train_loss[0] and h.val_acc[-1] > 0.8
