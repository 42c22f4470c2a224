"""The shared training loop: learning, reproducibility, clipping, early stopping, checkpoints, DDP."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from collections import namedtuple

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import TensorDataset

from mmcourse.runtime import seed_everything
from mmcourse.training import (
    History,
    TensorRows,
    fit,
    load_checkpoint,
    make_loader,
    save_checkpoint,
    to_device,
    train_step,
)

W_TRUE = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


def regression(n: int = 256, seed: int = 0, scale: float = 1.0) -> TensorDataset:
    """y = x @ W_TRUE + noise: a linear target a small MLP can fit to near the noise level."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ W_TRUE + 0.1 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, scale * y)


def mlp(seed: int = 0) -> nn.Module:
    seed_everything(seed)
    # Dropout makes the loop's use of the global RNG visible to the reproducibility tests.
    return nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 1))


def mse(model, batch):
    x, y = batch
    return F.mse_loss(model(x), y)


def mse_with_mae(model, batch):
    x, y = batch
    pred = model(x)
    return F.mse_loss(pred, y), {"mae": (pred - y).abs().mean().item()}


def train(epochs: int = 4, model_seed: int = 0, loader_seed: int = 0, loss_fn=mse, **kw):
    model = mlp(model_seed)
    kw = {"lr": 1e-2, "device": "cpu", "progress": False,
          "val_loader": make_loader(regression(64, seed=1), 64), **kw}
    history = fit(model, make_loader(regression(), 32, shuffle=True, seed=loader_seed), loss_fn,
                  epochs=epochs, **kw)
    return model, history


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def without_seconds(history: History) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_fit_learns_a_regression_and_records_logs():
    model, history = train(epochs=15, loss_fn=mse_with_mae)
    target_var = regression(64, seed=1).tensors[1].var().item()  # loss of predicting the mean
    assert history["epoch"] == list(range(1, 16))
    assert history["train_loss"][-1] < 0.1 * history["train_loss"][0]
    assert history["val_loss"][-1] < 0.05 * target_var
    assert history["val_mae"][-1] < history["val_mae"][0]
    assert set(history.keys()) == {"epoch", "train_loss", "train_mae", "val_loss", "val_mae", "lr", "seconds"}
    assert history[-1]["lr"] == pytest.approx(1e-2)
    assert "val_loss" in repr(history)


def test_same_seed_gives_identical_weights_and_history():
    a, ha = train()
    b, hb = train()
    assert same_weights(a, b)
    assert without_seconds(ha) == without_seconds(hb)
    c, hc = train(loader_seed=1)  # another batch order: the check above can fail
    assert not same_weights(a, c)


class NormRecordingSGD(torch.optim.SGD):
    """SGD that remembers the total gradient norm it was asked to step with."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.norms: list[float] = []

    def step(self, closure=None):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in grads])).item())
        return super().step(closure)


@pytest.mark.parametrize("clip", [None, 0.5])
def test_grad_clip_bounds_the_gradient_norm(clip):
    model = mlp()
    opt = NormRecordingSGD(model.parameters(), lr=1e-4)
    loader = make_loader(regression(scale=100.0), 32, shuffle=True)  # big targets, big gradients
    fit(model, loader, mse, epochs=1, optimizer=opt, grad_clip=clip, device="cpu", progress=False)
    assert len(opt.norms) == 8
    if clip is None:
        assert min(opt.norms) > 10 * 0.5  # so clipping below has something to do
    else:
        assert max(opt.norms) <= clip * (1 + 1e-5)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_early_stopping_stops_and_restores_the_best_weights(mode, capsys):
    sign = 1 if mode == "min" else -1
    scores = [3.0, 2.0, 1.0, 1.5, 2.0, 0.5, 0.1]  # best at epoch 3, then two worse epochs
    snapshots = []

    def val_fn(model, loader):
        assert not model.training and not torch.is_grad_enabled()
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"score": sign * scores[len(snapshots) - 1]}

    model, history = train(epochs=7, val_fn=val_fn, patience=2, monitor="val_score", mode=mode)
    assert history["epoch"] == [1, 2, 3, 4, 5]
    assert history.best("val_score", mode)["epoch"] == 3
    state = model.state_dict()
    assert all(torch.equal(state[k], snapshots[2][k]) for k in state)
    assert not all(torch.equal(state[k], snapshots[4][k]) for k in state)
    assert "stopped early after epoch 5; restored the weights of epoch 3" in capsys.readouterr().out


def test_checkpoints_are_atomic_and_bad_files_give_clear_errors(tmp_path, monkeypatch):
    ckpt = tmp_path / "run" / "model.pt"
    model, _ = train(epochs=2, checkpoint=ckpt)
    assert [p.name for p in ckpt.parent.iterdir()] == ["model.pt"]  # no temp files left
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert all(torch.equal(state["model"][k], v) for k, v in model.state_dict().items())

    def crash(obj, f, *args, **kwargs):  # a crash halfway through writing
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ckpt, epoch=99)
    monkeypatch.undo()
    assert load_checkpoint(ckpt)["epoch"] == 2  # the old checkpoint survived intact
    assert [p.name for p in ckpt.parent.iterdir()] == ["model.pt"]

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckpt.read_bytes()[:300])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    for bad in (truncated, garbage):
        with pytest.raises(RuntimeError, match=f"checkpoint {bad} is corrupt.*delete it"):
            load_checkpoint(bad)
    with pytest.raises(RuntimeError, match="corrupt"):
        train(epochs=1, checkpoint=garbage)  # resuming never silently starts over
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")

    code = tmp_path / "code.pt"
    torch.save({"obj": NormRecordingSGD([nn.Parameter(torch.zeros(1))], lr=1.0)}, code)
    with pytest.raises(RuntimeError, match="corrupt or not a mmcourse checkpoint"):
        load_checkpoint(code)  # weights_only: pickled objects are refused


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, capsys):
    def step_lr(model):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)

    def run(checkpoint, loss_fn=mse, model_seed=0):
        model = mlp(model_seed)
        opt, sched = step_lr(model)
        history = fit(model, make_loader(regression(), 32, shuffle=True), loss_fn, epochs=4,
                      optimizer=opt, scheduler=sched, device="cpu", progress=False,
                      val_loader=make_loader(regression(64, seed=1), 64), checkpoint=checkpoint)
        return model, history

    whole, whole_history = run(tmp_path / "whole.pt")

    calls = 0

    def power_cut_in_epoch_3(model, batch):
        nonlocal calls
        calls += 1
        if calls == 2 * 8 + 2 * 1 + 3:  # two epochs of 8 train + 1 val batches, then 3 more
            raise RuntimeError("power cut")
        return mse(model, batch)

    ckpt = tmp_path / "cut.pt"
    with pytest.raises(RuntimeError, match="power cut"):
        run(ckpt, loss_fn=power_cut_in_epoch_3)
    assert load_checkpoint(ckpt)["epoch"] == 2

    resumed, resumed_history = run(ckpt, model_seed=123)  # other init: the checkpoint must win
    assert "resumed from" in capsys.readouterr().out
    assert same_weights(whole, resumed)
    assert without_seconds(whole_history) == without_seconds(resumed_history)
    assert [r["lr"] for r in resumed_history] == pytest.approx([1e-2 * 0.7 ** i for i in range(4)])

    again, again_history = run(ckpt, model_seed=7)  # finished: nothing more to train
    assert same_weights(whole, again) and len(again_history) == 4

    fresh, _ = train(epochs=1, checkpoint=tmp_path / "cut.pt", resume=False)
    assert load_checkpoint(ckpt)["epoch"] == 1  # resume=False starts over and overwrites


def test_train_step_is_one_plain_sgd_step_and_refuses_a_nan_loss_before_touching_the_weights():
    x, y = regression(32)[:]
    model, by_hand = mlp(), mlp()
    model.eval(), by_hand.eval()  # no dropout: both see the same function
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    value, logs = train_step(model, (x, y), mse_with_mae, torch.optim.SGD(model.parameters(), lr=0.1), scaler,
                             grad_clip=1.0)
    loss = F.mse_loss(by_hand(x), y)
    loss.backward()
    nn.utils.clip_grad_norm_(by_hand.parameters(), 1.0)
    with torch.no_grad():
        for p in by_hand.parameters():
            p -= 0.1 * p.grad
    assert value == pytest.approx(loss.item()) and set(logs) == {"mae"}
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(model.parameters(), by_hand.parameters()))

    before = [p.clone() for p in model.parameters()]
    with pytest.raises(FloatingPointError, match="the loss became inf"):
        train_step(model, (x, y), lambda m, b: mse(m, b) * float("inf"), torch.optim.SGD(model.parameters(), lr=0.1),
                   scaler)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_wrong_inputs_give_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"scalar loss, got shape \(32, 1\).*\.mean\(\)"):
        train(loss_fn=lambda m, b: F.mse_loss(m(b[0]), b[1], reduction="none"))
    with pytest.raises(TypeError, match="scalar tensor or \\(loss, logs\\), got float"):
        train(loss_fn=lambda m, b: 1.0)
    with pytest.raises(TypeError, match="dict of numbers, got list"):
        train(loss_fn=lambda m, b: (mse(m, b), [1.0]))
    with pytest.raises(ValueError, match="does not require grad"):
        train(loss_fn=lambda m, b: mse(m, b).detach())
    with pytest.raises(FloatingPointError, match="nan at batch 0 of epoch 1"):
        train(loss_fn=lambda m, b: mse(m, b) * float("nan"))
    with pytest.raises(ValueError, match="positive integer"):
        train(epochs=0)
    with pytest.raises(ValueError, match="mode must be"):
        train(mode="lowest")
    with pytest.raises(ValueError, match="early stopping needs val_loader"):
        fit(mlp(), make_loader(regression(), 32), mse, epochs=1, patience=2, device="cpu")
    with pytest.raises(KeyError, match="watch 'val_acc'.*pass monitor="):
        train(patience=2, monitor="val_acc")
    with pytest.raises(ValueError, match="amp must be"):
        train(amp="fp8")
    with pytest.warns(UserWarning, match="mixed precision is used on CUDA only"):
        train(epochs=1, amp=True)
    with pytest.raises(ValueError, match="gave no batches"):
        fit(mlp(), make_loader(regression(8), 32, drop_last=True), mse, epochs=1, device="cpu")
    other = tmp_path / "other.pt"
    fit(nn.Linear(4, 1), make_loader(regression(), 32), mse, epochs=1, device="cpu",
        progress=False, checkpoint=other)
    with pytest.raises(ValueError, match="does not fit this model.*resume=False"):
        train(epochs=1, checkpoint=other)
    with pytest.raises(KeyError, match="no 'val_acc' in the history"):
        History([{"epoch": 1, "train_loss": 1.0}])["val_acc"]


def test_history_plot_draws_losses_and_metrics(capsys):
    _, history = train(epochs=3, loss_fn=mse_with_mae, progress=True)  # the bar runs too
    fig = history.plot()
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "mae"]
    loss_ax = fig.axes[0]
    assert [line.get_label() for line in loss_ax.lines] == ["train_loss", "val_loss"]
    assert list(loss_ax.lines[1].get_ydata()) == history["val_loss"]
    fig.savefig(os.devnull, format="png")  # renders without error
    with pytest.raises(ValueError, match="no epochs"):
        History().plot()


def test_to_device_moves_nested_tensors_only():
    Pair = namedtuple("Pair", "image caption")
    batch = {"pair": Pair(torch.ones(2), "a cat"), "ids": [torch.zeros(3, dtype=torch.long), 7]}
    moved = to_device(batch, torch.device("meta"))  # a real move without a GPU
    assert isinstance(moved["pair"], Pair) and moved["pair"].caption == "a cat"
    assert moved["pair"].image.device.type == "meta"
    assert moved["ids"][0].device.type == "meta" and moved["ids"][0].dtype == torch.long
    assert moved["ids"][1] == 7 and batch["pair"].image.device.type == "cpu"


def test_make_loader_order_depends_on_seed_and_epoch_and_shards_ranks(monkeypatch):
    data = TensorDataset(torch.arange(20))
    loader = make_loader(data, 5, shuffle=True, seed=3)

    def order(epoch):
        loader.sampler.set_epoch(epoch)
        return torch.cat([b[0] for b in loader]).tolist()

    assert sorted(order(0)) == list(range(20))
    assert order(0) == order(0) and order(0) != order(1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    shards = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        shards.append(torch.cat([b[0] for b in make_loader(data, 5, shuffle=True, seed=3)]).tolist())
    assert len(shards[0]) == len(shards[1]) == 10
    assert sorted(shards[0] + shards[1]) == list(range(20))


DDP_SCRIPT = """
import os, sys
from pathlib import Path
import torch, torch.distributed as dist, torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset
from mmcourse.matching import tagging
from mmcourse.runtime import seed_everything
from mmcourse.training import all_gather_cat, fit, make_loader, unwrap

out, rank = Path(sys.argv[1]), int(os.environ["RANK"])
g = torch.Generator().manual_seed(0)
x = torch.randn(228, 4, generator=g)
y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
data = TensorDataset(torch.arange(128), x[:128], y[:128])
val = TensorDataset(torch.arange(100), x[128:], y[128:])  # 50 per rank: batches of 32 and 18
seen = []

def loss_fn(model, batch):
    assert isinstance(model, nn.parallel.DistributedDataParallel) or not model.training
    index, x, y = batch
    if model.training:
        seen.append(index.tolist())
    return F.mse_loss(model(x), y)

def val_fn(model, loader):
    # A ranking metric must see the whole gallery: gather the shards first.
    index = all_gather_cat(torch.cat([batch[0] for batch in loader]))
    return {"gallery": len(index), "distinct": len(set(index.tolist()))}

seed_everything(rank)  # different initial weights per rank: DDP must start them equal
model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
history = fit(model, make_loader(data, 8, shuffle=True, seed=0), loss_fn, epochs=5, lr=3e-2,
              device="cpu", val_loader=make_loader(val, 32), patience=10,
              checkpoint=out / "ckpt.pt")
with torch.no_grad():
    full_val_loss = F.mse_loss(model(x[128:]), y[128:]).item()
seen_in_training = list(seen)
gathered = fit(model, make_loader(data, 8), loss_fn, epochs=1, lr=0.0, device="cpu",
               val_loader=make_loader(val, 32), val_fn=val_fn, progress=False)

# The course's own contrastive step under DDP: every parameter, the temperature too, stays in sync.
seed_everything(10 + rank)
images, tags = torch.rand(32, 3, 16, 16), torch.rand(32, 5) > 0.5
tags[:, 0] = True
joint = tagging.JointEmbedding(num_tags=5, dim=8, width=4)
fit(joint, make_loader(TensorDataset(images, tags), 8, shuffle=True), tagging.clip_step, epochs=2,
    lr=1e-2, device="cpu", progress=False)
torch.save({"model": model.state_dict(), "history": history.records, "seen": seen_in_training,
            "full_val_loss": full_val_loss, "gathered": gathered.records[-1],
            "joint": unwrap(joint).state_dict(), "backend": dist.get_backend()}, out / f"rank{rank}.pt")
dist.destroy_process_group()
"""


def test_torchrun_ddp_two_cpu_processes_agree_and_learn(tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("MMCOURSE_DEVICE", None)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", str(script), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["backend"] == "gloo"
    assert ranks[0]["model"].keys() == ranks[1]["model"].keys()
    assert all(torch.equal(ranks[0]["model"][k], ranks[1]["model"][k]) for k in ranks[0]["model"])

    h0, h1 = ranks[0]["history"], ranks[1]["history"]
    assert [r["train_loss"] for r in h0] == [r["train_loss"] for r in h1]  # averaged across ranks
    assert h0[-1]["train_loss"] < 0.2 * h0[0]["train_loss"]
    # Validation is the mean over all 100 samples of both shards, not a mean of batch means.
    assert h0[-1]["val_loss"] == pytest.approx(ranks[0]["full_val_loss"], rel=1e-5)
    assert h0[-1]["val_loss"] == h1[-1]["val_loss"]
    for r in ranks:  # a val_fn that gathers sees the whole validation set on every rank
        assert r["gathered"]["val_gallery"] == r["gathered"]["val_distinct"] == 100
    joint0, joint1 = ranks[0]["joint"], ranks[1]["joint"]
    assert [k for k in joint0 if not torch.equal(joint0[k], joint1[k])] == []
    assert not torch.equal(joint0["logit_scale"], torch.tensor(math.log(1 / 0.07)))  # it trained

    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 5 * 8
    for epoch in range(5):  # 128 samples / 2 ranks / 8 per batch = 8 batches per rank-epoch
        a = sum(ranks[0]["seen"][8 * epoch:8 * epoch + 8], [])
        b = sum(ranks[1]["seen"][8 * epoch:8 * epoch + 8], [])
        assert sorted(a + b) == list(range(128))  # disjoint shards that cover the data
    assert ranks[0]["seen"][:8] != ranks[0]["seen"][8:16]  # set_epoch reshuffles

    ckpt = load_checkpoint(tmp_path / "ckpt.pt")
    assert ckpt["epoch"] == 5 and not any(k.startswith("module.") for k in ckpt["model"])
    assert proc.stdout.count("restored the weights of epoch") == 1  # only rank 0 prints
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "rank0.pt", "rank1.pt", "train_ddp.py"]



def test_without_patience_no_best_weights_are_copied_or_checkpointed(tmp_path):
    # Keeping a second copy of the weights only serves early stopping.
    train(epochs=2, checkpoint=tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt")["best"]["model"] is None
    train(epochs=2, checkpoint=tmp_path / "p.pt", resume=False, patience=3)
    assert load_checkpoint(tmp_path / "p.pt")["best"]["model"] is not None


def test_tensor_rows_gives_one_row_of_every_tensor():
    rows = TensorRows({"image": torch.arange(12.0).view(3, 4), "label": torch.tensor([7, 8, 9])})
    assert len(rows) == 3
    assert rows[1]["image"].tolist() == [4.0, 5.0, 6.0, 7.0] and rows[1]["label"].item() == 8
    batch = next(iter(make_loader(rows, batch_size=3)))
    assert batch["image"].shape == (3, 4) and batch["label"].tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match="same length"):
        TensorRows({"image": torch.zeros(3, 4), "label": torch.zeros(2)})
