"""Training loop: AdamW, plateau/cosine learning-rate schedule, EMA weights, gradient clipping,
per-channel loss weights, early stopping on a validation split, checkpoints and exact resume.

Determinism: weights are initialised from the seed (by the caller); the order of training structures
in epoch e is a permutation drawn from a generator seeded with (seed, e), so an epoch's batches do not
depend on what ran before. Under a distributed launch (:mod:`.distributed`) every process draws the
same permutation and takes every world_size-th structure of each global batch; the loss is normalised
by the global number of samples, so the averaged gradient, hence the run, is that of one process.
A resumed run restores weights, EMA and best weights, AdamW moments, schedule and early-stopping
state, and then repeats the uninterrupted run exactly.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from psilearn.config import Checks, Options
from psilearn.models._torch import distributed as ddp
from psilearn.models._torch.checkpoint import load_checkpoint, optimizer_from_flat, optimizer_to_flat, save_checkpoint
from psilearn.models._torch.graph import Graph, collate

log = logging.getLogger("psilearn")


@dataclass
class TrainConfig(Options):
    """Training and uncertainty options (YAML section ``nn_train:``)."""

    section: ClassVar[str] = "nn_train"

    epochs: int = 300  # maximum number of epochs
    batch_size: int = 8  # structures per batch
    lr: float = 5e-3  # initial learning rate
    weight_decay: float = 1e-6  # AdamW decoupled weight decay
    schedule: str = "plateau"  # 'plateau', 'cosine' or 'constant'
    plateau_factor: float = 0.5  # lr multiplier on a plateau
    plateau_patience: int = 10  # epochs without validation improvement before lowering lr
    min_lr: float = 1e-5
    warmup_epochs: int = 0  # linear warm-up (cosine schedule)
    patience: int = 40  # early stopping: epochs without validation improvement
    ema_decay: float = 0.99  # exponential moving average of weights (0 disables)
    clip_grad: float = 10.0  # max gradient norm (0 disables)
    restore_best: bool = True  # end with the EMA weights of the best validation epoch (else the last)
    val_fraction: float = 0.1  # validation split of the training structures
    loss_weights: dict[str, float] = field(default_factory=dict)  # block name (e.g. '0e', '2e', '1o#1') -> weight
    dtype: str = "float32"  # 'float32' or 'float64'
    device: str = "auto"  # 'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ...
    checkpoint_every: int = 10  # epochs between checkpoints (when a checkpoint directory is set)
    max_seconds: float = 0.0  # wall-time budget per model (0: none); stops after the epoch that crosses it
    predict_batch_size: int = 32  # structures per batch at prediction time
    threads: int = 0  # torch CPU threads (0: leave torch's setting); 1 is fastest on a busy machine
    uncertainty: str = "llpr"  # 'llpr' (last-layer), 'ensemble' (deep ensemble) or 'none'
    ensemble_size: int = 4  # members of a deep ensemble
    llpr_regularization: float = 1e-6  # relative ridge added to the last-layer covariance

    def check(self, c: Checks) -> None:
        c.require(self.threads >= 0, "threads", "must be >= 0")
        for name in ("epochs", "batch_size", "predict_batch_size", "ensemble_size"):
            c.require(getattr(self, name) >= 1, name, "must be >= 1")
        c.one_of("schedule", ("plateau", "cosine", "constant"))
        c.one_of("dtype", ("float32", "float64"))
        c.one_of("uncertainty", ("llpr", "ensemble", "none"))
        c.require(0 < self.val_fraction < 1, "val_fraction", "must be in (0, 1)")
        c.require(0 <= self.ema_decay < 1, "ema_decay", "must be in [0, 1)")
        c.require(self.lr > 0, "lr", "must be > 0")
        for name in ("weight_decay", "min_lr", "warmup_epochs", "patience", "plateau_patience", "clip_grad",
                     "max_seconds", "llpr_regularization"):
            c.require(getattr(self, name) >= 0, name, "must be >= 0")
        c.require(0 < self.plateau_factor <= 1, "plateau_factor", "must be in (0, 1]")
        c.require(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == "float64" else torch.float32


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


class LRSchedule:
    """Learning rate per epoch: plateau (multiply by ``factor`` after ``patience`` epochs without a
    validation improvement), cosine (from lr to min_lr over ``epochs``, optional warm-up), constant."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.lr = cfg.lr
        self.best = math.inf
        self.bad = 0

    def lr_for_epoch(self, epoch: int) -> float:
        c = self.cfg
        if c.schedule == "cosine":
            if epoch < c.warmup_epochs:
                return c.lr * (epoch + 1) / (c.warmup_epochs + 1)
            t = (epoch - c.warmup_epochs) / max(1, c.epochs - c.warmup_epochs)
            return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1 + math.cos(math.pi * min(t, 1.0)))
        return self.lr

    def step(self, val: float) -> None:
        if self.cfg.schedule != "plateau":
            return
        if val < self.best * (1 - 1e-4):
            self.best, self.bad = val, 0
        else:
            self.bad += 1
            if self.bad > self.cfg.plateau_patience:
                self.lr, self.bad = max(self.cfg.min_lr, self.lr * self.cfg.plateau_factor), 0

    def state(self) -> dict:
        return {"lr": self.lr, "best": self.best if math.isfinite(self.best) else None, "bad": self.bad}

    def load(self, s: dict) -> None:
        self.lr, self.bad = s["lr"], s["bad"]
        self.best = math.inf if s["best"] is None else s["best"]


class EMA:
    """Exponential moving average of the trainable parameters (decay ramped up over early steps)."""

    def __init__(self, net: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: p.detach().clone() for k, p in net.named_parameters()}

    @torch.no_grad()
    def update(self, net: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, p in net.named_parameters():
            self.shadow[k].mul_(d).add_(p.detach(), alpha=1 - d)

    @torch.no_grad()
    def copy_to(self, net: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Load EMA weights into ``net``; returns the previous weights (for :meth:`restore`)."""
        backup = {k: p.detach().clone() for k, p in net.named_parameters()}
        for k, p in net.named_parameters():
            p.copy_(self.shadow[k])
        return backup

    @staticmethod
    @torch.no_grad()
    def restore(net: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
        for k, p in net.named_parameters():
            p.copy_(weights[k])


def _n_rows(g: Graph, per: str) -> int:
    if per == "pair":
        return g.n_pairs
    return g.n_atoms if g.labelled is None else int(np.count_nonzero(g.labelled))


def sample_rows(graphs: list[Graph], y: np.ndarray, per: str) -> list[np.ndarray]:
    """Split target rows (n_samples, n_out) per structure (one row, one per atom or one per pair;
    with a label mask, ``Graph.labelled``, one per labelled atom)."""
    if per == "structure":
        return [y[i : i + 1] for i in range(len(graphs))]
    ends = np.cumsum([_n_rows(g, per) for g in graphs])
    return np.split(y, ends[:-1])


class TargetLoss:
    """The nn model's loss: network outputs (per atom, or pooled per structure) against Target rows.

    Per sample, sum_c w_c ((pred_c - y_c) / s_c)^2 with ``loss_scale`` s (n_out,) and ``col_weight`` w (n_out,).
    Per-atom targets with a label mask (graphs with ``labelled``): the samples are the labelled atoms only (``y``
    holds their rows; every atom is still in the graph). Other models plug their own object with the same three
    methods into :class:`Trainer` (e.g. QEq-NN, whose network output goes through charge equilibration first)."""

    def __init__(self, per: str, pool: str, loss_scale: np.ndarray, col_weight: np.ndarray):
        self.per, self.pool = per, pool
        self.loss_scale, self.col_weight = np.asarray(loss_scale, float), np.asarray(col_weight, float)

    def rows(self, graphs: list[Graph], y) -> list:
        """Per-structure training data, indexable like ``graphs``."""
        return sample_rows(graphs, y, self.per)

    def batch(self, graphs: list[Graph], rows: list, idx, device, dtype):
        """Everything :meth:`terms` needs for the structures ``idx``."""
        gs = [graphs[i] for i in idx]
        b = collate(gs, device, dtype)
        y = torch.as_tensor(np.concatenate([rows[i] for i in idx]), dtype=dtype, device=device)
        mask = None
        if self.per == "atom" and any(g.labelled is not None for g in gs):
            mask = torch.as_tensor(np.concatenate([np.ones(g.n_atoms, bool) if g.labelled is None else g.labelled for g in gs]), device=device)
        return b, y, mask

    def terms(self, net: torch.nn.Module, batch) -> torch.Tensor:
        """Loss of each sample of the batch, (n_samples,); the training loss is their mean."""
        return self.scaled_terms(net, batch, torch.as_tensor(self.loss_scale, dtype=batch[1].dtype, device=batch[1].device))

    def scaled_terms(self, net: torch.nn.Module, batch, scale: torch.Tensor) -> torch.Tensor:
        """sum_c w_c ((pred_c - y_c) / scale_c)^2 per sample, ``scale`` (n_out,) or (n_samples, n_out)."""
        b, y, mask = batch
        pred = net(b, self.per, self.pool)
        if mask is not None:  # labels on only some atoms: the others are predicted, never scored
            pred = pred[mask]
        return (((pred - y) / scale) ** 2 * torch.as_tensor(self.col_weight, dtype=y.dtype, device=y.device)).sum(1)


class Trainer:
    """Fits one network. By default (:class:`TargetLoss`) ``y`` rows are target irreps in the
    target's units; ``loss_scale`` (n_out,) normalises each column and ``col_weight`` (n_out,)
    weights it (the loss is sum_c w_c * mean((pred_c - y_c) / s_c)^2). ``loss`` replaces that with
    any object with ``rows``/``batch``/``terms`` methods (then per, pool, loss_scale and
    col_weight are unused and may be None)."""

    def __init__(self, net: torch.nn.Module, cfg: TrainConfig, per: str | None, pool: str | None,
                 loss_scale: np.ndarray | None, col_weight: np.ndarray | None, seed: int = 0,
                 device: torch.device | str = "cpu", checkpoint_dir=None, resume: bool = False, progress: bool = False,
                 fingerprint: str = "", on_epoch_end=None, loss=None):
        self.net, self.cfg, self.per, self.pool = net, cfg, per, pool
        self.device, self.dtype = torch.device(device), cfg.torch_dtype
        self.seed = int(seed)
        self.loss = loss if loss is not None else TargetLoss(per, pool, loss_scale, col_weight)
        self.checkpoint_dir, self.resume, self.progress = checkpoint_dir, resume, progress
        self.fingerprint = fingerprint
        self.on_epoch_end = on_epoch_end

    # ---- batches ---------------------------------------------------------------------------------
    def _batch(self, graphs, rows, idx):
        return self.loss.batch(graphs, rows, idx, self.device, self.dtype)

    @torch.no_grad()
    def evaluate(self, graphs, rows) -> float:
        """Weighted normalised loss over a whole set (mean over samples)."""
        self.net.eval()
        total, n = 0.0, 0
        bs = self.cfg.predict_batch_size
        for s in range(0, len(graphs), bs):
            terms = self.loss.terms(self.net, self._batch(graphs, rows, range(s, min(s + bs, len(graphs)))))
            total += float(terms.sum())
            n += len(terms)
        return total / max(n, 1)

    # ---- checkpoints -----------------------------------------------------------------------------
    def _save(self, opt, ema, best, st: dict) -> None:
        tensors = {f"model/{k}": v for k, v in self.net.state_dict().items()}
        tensors.update({f"ema/{k}": v for k, v in ema.shadow.items()})
        tensors.update({f"best/{k}": v for k, v in best.items()})
        ot, oinfo = optimizer_to_flat(opt)
        tensors.update(ot)
        save_checkpoint(self.checkpoint_dir, {**st, "optimizer": oinfo}, tensors)

    def _identity(self) -> dict:
        # options that may change between an interrupted run and its resumption
        free = ("epochs", "device", "max_seconds", "checkpoint_every", "predict_batch_size", "threads")
        cfg = {k: v for k, v in self.cfg.to_dict().items() if k not in free}
        return {"seed": self.seed, "config": cfg, "fingerprint": self.fingerprint,
                "n_parameters": sum(p.numel() for p in self.net.parameters())}

    # ---- the loop --------------------------------------------------------------------------------
    def fit(self, train_graphs: list[Graph], y_train, val_graphs: list[Graph], y_val) -> dict:
        """Train; afterwards the network holds the best (lowest validation loss) EMA weights.
        Returns a summary: epochs run, best epoch and validation loss, reason for stopping, history."""
        cfg, net = self.cfg, self.net
        net.to(device=self.device, dtype=self.dtype)
        tr_rows = self.loss.rows(train_graphs, y_train)
        va_rows = self.loss.rows(val_graphs, y_val)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = LRSchedule(cfg)
        ema = EMA(net, cfg.ema_decay)
        best = {k: v.detach().clone() for k, v in ema.shadow.items()}
        st = {"epoch": 0, "step": 0, "best_val": None, "best_epoch": 0, "since_best": 0, "history": [],
              "elapsed": 0.0, "stopped": "", **self._identity()}
        if self.resume and self.checkpoint_dir:
            st, best = self._resume(opt, sched, ema, st, best)
        if st.get("stopped", "").startswith("maximum") and st["epoch"] < cfg.epochs:
            st["stopped"] = ""  # resumed with a larger epoch budget
        if st.get("stopped"):
            EMA.restore(net, best if cfg.restore_best else ema.shadow)
            return self._summary(st)

        from tqdm.auto import tqdm

        n = len(train_graphs)
        # what the training forward goes through (DDP in a process group)
        self._model = ddp.wrap(net, self.device, find_unused=getattr(self.loss, "unused_parameters", False))
        bar = tqdm(total=cfg.epochs, initial=st["epoch"], desc="training", disable=not (self.progress and ddp.is_main()), leave=False)
        t_start = time.perf_counter() - st["elapsed"]
        while st["epoch"] < cfg.epochs:
            epoch = st["epoch"]
            lr = sched.lr_for_epoch(epoch)
            for g in opt.param_groups:
                g["lr"] = lr
            train_loss = self._train_epoch(opt, ema, train_graphs, tr_rows, epoch, st)
            backup = ema.copy_to(net)
            val = self.evaluate(val_graphs, va_rows)
            EMA.restore(net, backup)
            # rank 0's validation loss and clock decide for all processes (they agree to rounding)
            val, elapsed = ddp.from_main([val, time.perf_counter() - t_start], self.device)
            sched.step(val)
            st["epoch"] = epoch + 1
            st["history"].append({"epoch": epoch + 1, "lr": lr, "train_loss": train_loss / n, "val_loss": val})
            if st["best_val"] is None or val < st["best_val"]:
                st["best_val"], st["best_epoch"], st["since_best"] = val, epoch + 1, 0
                best = {k: v.detach().clone() for k, v in ema.shadow.items()}
            else:
                st["since_best"] += 1
            st["elapsed"] = elapsed
            if st["since_best"] > cfg.patience:
                st["stopped"] = f"early stopping (no validation improvement in {cfg.patience} epochs)"
            elif cfg.max_seconds and st["elapsed"] > cfg.max_seconds:
                st["stopped"] = f"time budget of {cfg.max_seconds:g} s reached"
            elif st["epoch"] >= cfg.epochs:
                st["stopped"] = f"maximum of {cfg.epochs} epochs reached"
            bar.update(1)
            bar.set_postfix(train=f"{train_loss / n:.3g}", val=f"{val:.3g}", lr=f"{lr:.2g}")
            if self.checkpoint_dir and ddp.is_main() and (st["epoch"] % cfg.checkpoint_every == 0 or st["stopped"]):
                self._save(opt, ema, best, {**st, "schedule": sched.state()})
            if self.on_epoch_end is not None:
                self.on_epoch_end(st["epoch"])
            if st["stopped"]:
                break
        bar.close()
        EMA.restore(net, best if cfg.restore_best else ema.shadow)
        return self._summary(st)

    def _resume(self, opt, sched, ema, st: dict, best: dict) -> tuple[dict, dict]:
        """Restore network, EMA, best weights, optimizer and schedule from the checkpoint (if any);
        ValueError if it was written for a different run. Returns the run state and best weights."""
        loaded = load_checkpoint(self.checkpoint_dir)
        if loaded is None:
            return st, best
        st0, tens = loaded
        mismatch = [k for k, v in self._identity().items() if st0.get(k) != v]
        if mismatch:
            raise ValueError(f"checkpoint {self.checkpoint_dir} was written for a different run "
                             f"(differs in {', '.join(mismatch)}); remove it or drop --resume")
        self.net.load_state_dict({k[6:]: v for k, v in tens.items() if k.startswith("model/")})
        self.net.to(device=self.device, dtype=self.dtype)
        with torch.no_grad():
            ema.shadow = {k[4:]: v.to(self.device, self.dtype) for k, v in tens.items() if k.startswith("ema/")}
            best = {k[5:]: v.to(self.device, self.dtype) for k, v in tens.items() if k.startswith("best/")}
        optimizer_from_flat(opt, {k: v.to(self.device) for k, v in tens.items() if k.startswith("opt/")}, st0["optimizer"])
        sched.load(st0["schedule"])
        st = {k: v for k, v in st0.items() if k not in ("optimizer", "schedule")}
        log.info("resumed from %s at epoch %d", self.checkpoint_dir, st["epoch"])
        return st, best

    def _train_epoch(self, opt, ema, graphs: list[Graph], rows, epoch: int, st: dict) -> float:
        """One pass over the training set in a seeded random order; returns the summed loss."""
        cfg, net, n = self.cfg, self.net, len(graphs)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=gen).numpy()
        net.train()
        train_loss = 0.0
        for s in range(0, n, cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            loss, batch_loss = self._batch_loss(graphs, rows, idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_grad)
            opt.step()
            st["step"] += 1
            if cfg.ema_decay > 0:
                ema.update(net, st["step"])
            else:
                ema.shadow = {k: p.detach().clone() for k, p in net.named_parameters()}
            train_loss += batch_loss * len(idx)
        return train_loss

    def _batch_loss(self, graphs: list[Graph], rows, idx) -> tuple[torch.Tensor, float]:
        """(loss to differentiate, mean loss of the global batch ``idx``). One process: the mean
        over samples. Distributed: this rank's structures idx[rank::world], loss = sum * world / N
        with N the global sample count (with a label mask: of labelled atoms, the samples of
        :class:`TargetLoss`), so DDP's gradient average is the one-process gradient. A
        rank left without structures runs a zero-weighted one (every rank joins each reduction)."""
        model = getattr(self, "_model", self.net)
        world = ddp.world_size()
        if world == 1:
            loss = self.loss.terms(model, self._batch(graphs, rows, idx)).mean()
            return loss, float(loss.detach())
        mine = idx[ddp.rank() :: world]
        terms = self.loss.terms(model, self._batch(graphs, rows, mine if len(mine) else idx[:1]))
        if not len(mine):
            terms = terms * 0.0
        total, count = ddp.all_sum([float(terms.detach().sum()), len(terms) if len(mine) else 0], self.device)
        return terms.sum() * (world / count), total / count

    @staticmethod
    def _summary(st: dict) -> dict:
        out = {"epochs": st["epoch"], "best_epoch": st["best_epoch"], "best_val_loss": st["best_val"],
               "stopped": st["stopped"], "train_seconds": round(st["elapsed"], 3), "history": st["history"]}
        if ddp.world_size() > 1:
            out["processes"] = ddp.world_size()  # data-parallel training (torchrun)
        return out
