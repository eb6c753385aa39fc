"""Looped (weight-tied) transformer blocks: one block run L times per forward pass.

Shapes: B batch, N tokens of the hidden stream, M tokens of the encoder stream, D hidden width,
E encoder width, L loops.

Default gate ("zero"): loop 0 is exactly the wrapped block on h + e_0 (e_0 starts at 0); every
later loop runs the same block on h + e_ℓ and mixes its result in through a gate that starts at 0:

    h ← h + g_ℓ · (block(h + e_ℓ) − h)                            (ℓ = 1 … L−1, g_ℓ = 0 at init)

so a wrapped block equals the plain block bit-for-bit at initialisation for any loop count. The
gate still gets gradient at init (∂/∂g_ℓ = block(h + e_ℓ) − h ≠ 0); the embeddings e_ℓ (ℓ ≥ 1)
start small and random, so once the first step moves g_ℓ off zero they get gradient too — there
is no zero-gate × zero-embedding deadlock.

Published gate ("sigmoid", seed 002 Eq. 1 and seed 004): every loop blends
h ← g_ℓ · block(h + e_ℓ) + (1 − g_ℓ) · h with g_ℓ = σ(gate_ℓ) and gate_ℓ = 0 at init, i.e. half of
every block's update at init. Kept only to reproduce the paper: it is not the identity at init.

Per-token gates (seed 002 Exp 8): the gate logit of each hidden token is w_ℓ · h + b_ℓ (w_ℓ, b_ℓ
start at 0); an encoder stream, if any, uses b_ℓ alone.

Observing and extending the loop (seed 002 Exp 12, Exp 4):
- `register_loop_hook(fn)` calls fn(wrapper, loop, h) with the hidden state after every loop;
- `unroll = True` lets a call run more loops than `max_loops`: loops past the last trained one
  reuse its embedding, gate and β;
- `halting=True` adds a per-token halting head (logit u_ℓ · h + c_ℓ before each loop ℓ ≥ 1,
  starting at 0). With `halt_threshold` set, outside training, a token whose halting
  probability reaches the threshold stops updating for the rest of the call (it still serves
  as a key); `last_halting` counts the token-loops skipped. The head is fitted separately (it
  predicts that a loop would barely move the token), so training the model is unchanged.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint
from torch.utils.hooks import RemovableHandle

from canvas_engineering.errors import bad
from canvas_engineering.nn.sharpen import attach_logit_scaling

GATES = ("zero", "sigmoid")


def _check_loops(name: str, value, max_loops: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(name, value, "an int >= 1")
    if max_loops is not None and value > max_loops:
        raise bad(name, value, f"an int in [1, {max_loops}] (max_loops of this wrapper)")
    return value


class LoopedBlockWrapper(nn.Module):
    """Run a transformer block `loops` times with learned iteration embeddings and gates.

    Keeps the block's calling convention: call it exactly as the block (positional or keyword
    arguments) and get the same output structure back — a tensor `(B, N, D)`, or a tuple whose
    first item is the hidden stream `(B, N, D)` and second the encoder stream `(B, M, E)`, which
    is fed back into the next loop with its own embedding. An encoder input the block does not
    return (cross-attention context) stays fixed across loops.

    Args:
        block: the `nn.Module` to loop.
        dim: D, width of the hidden stream.
        max_loops: most loops per call; also the default loop count.
        encoder_dim: E, width of the encoder stream when the block returns one, else None.
        gate: "zero" (identity at init, default) or "sigmoid" (the published σ blend).
        per_token: gate each hidden token from its own state (seed 002 Exp 8).
        checkpoint: recompute each loop on backward (per loop, not per block) to save memory.
        sharpening: a `SharpeningSchedule`; loop ℓ scales attention logits by β(ℓ).
        hidden_arg / encoder_arg: names of the block's hidden / encoder parameters (default:
            its first parameter / "encoder_hidden_states" when it has one).
        emb_init_std: std of the random init of e_ℓ for ℓ ≥ 1 with the "zero" gate.
        halting: add a per-token halting head (see the module docstring).

    The per-call loop count is `self.loops` (set it, e.g. from a `CurriculumScheduler`), or the
    reserved keyword `loops=` on a call. Loop parameters are float32 and cast to the stream's
    dtype at the boundary, so a bf16 frozen block keeps fp32 trainable parameters.
    """

    def __init__(self, block: nn.Module, *, dim: int, max_loops: int = 3,
                 encoder_dim: int | None = None, gate: str = "zero", per_token: bool = False,
                 checkpoint: bool = False, sharpening=None, hidden_arg: str | None = None,
                 encoder_arg: str | None = None, emb_init_std: float = 0.02,
                 halting: bool = False):
        super().__init__()
        if not isinstance(block, nn.Module):
            raise TypeError(f"block: got {type(block).__name__}, expected a torch.nn.Module")
        if isinstance(block, LoopedBlockWrapper):
            raise TypeError("block: got a LoopedBlockWrapper, expected an unwrapped block")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise bad("dim", dim, "an int >= 1")
        _check_loops("max_loops", max_loops)
        if encoder_dim is not None and (not isinstance(encoder_dim, int) or encoder_dim < 1):
            raise bad("encoder_dim", encoder_dim, "None or an int >= 1")
        if gate not in GATES:
            raise bad("gate", gate, f"one of {list(GATES)}")
        if not emb_init_std >= 0:
            raise bad("emb_init_std", emb_init_std, "a float >= 0")

        self.block = block
        self.dim, self.max_loops, self.encoder_dim = dim, max_loops, encoder_dim
        self.gate, self.per_token, self.checkpoint = gate, bool(per_token), bool(checkpoint)
        self.loops = max_loops
        self.sharpening = sharpening
        self._signature = inspect.signature(block.forward)
        params = list(self._signature.parameters)
        self.hidden_arg = hidden_arg or (params[0] if params else None)
        if self.hidden_arg not in params:
            raise bad("hidden_arg", self.hidden_arg, f"a parameter of the block's forward {params}")
        if encoder_arg is None and "encoder_hidden_states" in params:
            encoder_arg = "encoder_hidden_states"
        if encoder_arg is not None and encoder_arg not in params:
            raise bad("encoder_arg", encoder_arg, f"a parameter of the block's forward {params}")
        if encoder_dim is not None and encoder_arg is None:
            raise bad("encoder_dim", encoder_dim, "None: the block has no encoder parameter")
        self.encoder_arg = encoder_arg

        # Gates: with "zero", loop 0 is the plain block and needs none.
        n_gates = max_loops - 1 if gate == "zero" else max_loops
        self.loop_emb = nn.Parameter(torch.zeros(max_loops, dim))  # (L, D)
        self.loop_gate = nn.Parameter(torch.zeros(n_gates))  # (L-1,) or (L,)
        self.loop_gate_w = nn.Parameter(torch.zeros(n_gates, dim)) if self.per_token else None
        self.loop_emb_enc = (nn.Parameter(torch.zeros(max_loops, encoder_dim))  # (L, E)
                             if encoder_dim is not None else None)
        self.halting = bool(halting)
        self.loop_halt_w = nn.Parameter(torch.zeros(max_loops - 1, dim)) if halting else None
        self.loop_halt_b = nn.Parameter(torch.zeros(max_loops - 1)) if halting else None
        self.halt_threshold: float | None = None
        self.last_halting: dict | None = None  # {"token_loops": n, "skipped": k} of the last call
        self.unroll = False
        self._loop_hooks: OrderedDict = OrderedDict()
        if gate == "zero":
            with torch.no_grad():
                self.loop_emb[1:].normal_(0.0, emb_init_std)
                if self.loop_emb_enc is not None:
                    self.loop_emb_enc[1:].normal_(0.0, emb_init_std)
        _device = next(block.parameters(), torch.empty(0)).device
        self.to(device=_device)

        self._beta_now = 1.0
        self._beta_kwarg = "beta" in params
        if sharpening is not None:
            if sharpening.max_loops != max_loops:
                raise bad("sharpening.max_loops", sharpening.max_loops,
                          f"{max_loops} (the wrapper's max_loops)")
            if not self._beta_kwarg:
                attach_logit_scaling(block, lambda: self._beta_now)

    def register_loop_hook(self, fn) -> RemovableHandle:
        """Call fn(wrapper, loop, h) with the hidden state `(B, N, D)` after every loop;
        `.remove()` the returned handle to stop."""
        handle = RemovableHandle(self._loop_hooks)
        self._loop_hooks[handle.id] = fn
        return handle

    def halt_logits(self, loop: int, h: torch.Tensor) -> torch.Tensor:
        """Halting logit of every token before loop `loop` ≥ 1. (B, N)"""
        i = min(loop, self.max_loops - 1) - 1
        return h.float() @ self.loop_halt_w[i] + self.loop_halt_b[i]

    def named_loop_parameters(self):
        """(name, parameter) of the loop parameters only, without the wrapped block's."""
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("block.")]

    def _gate(self, index: int, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate of one loop for the hidden stream `(B, N, 1)` or `()`, and for the encoder `()`."""
        b = self.loop_gate[index]
        g = (h.float() @ self.loop_gate_w[index]).unsqueeze(-1) + b if self.per_token else b
        if self.gate == "sigmoid":
            return torch.sigmoid(g), torch.sigmoid(b)
        return g, b

    def _one_loop(self, loop: int, h, enc, bound: inspect.BoundArguments):
        """Run loop `loop` on hidden `(B, N, D)` and encoder `(B, M, E)`; return new h, enc, out."""
        loop = min(loop, self.max_loops - 1)  # unrolled loops reuse the last trained one's
        if self.sharpening is not None:
            self._beta_now = float(self.sharpening.beta(loop))
            if self._beta_kwarg:
                bound.arguments["beta"] = self._beta_now
        bound.arguments[self.hidden_arg] = h + self.loop_emb[loop].to(h.dtype)
        if self.loop_emb_enc is not None:
            bound.arguments[self.encoder_arg] = enc + self.loop_emb_enc[loop].to(enc.dtype)
        out = self.block(*bound.args, **bound.kwargs)
        self._beta_now = 1.0
        if isinstance(out, torch.Tensor):
            new_h, new_enc = out, enc
        elif isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            new_h = out[0]
            returns_enc = self.encoder_arg is not None and len(out) > 1
            new_enc = out[1] if returns_enc else enc
        else:
            raise TypeError(f"block output: got {type(out).__name__}, expected a tensor or a "
                            "tuple whose first item is the hidden-state tensor")
        if self.gate == "zero" and loop == 0:
            return new_h, new_enc, out
        g_h, g_enc = self._gate(loop - 1 if self.gate == "zero" else loop, h)
        h = h + g_h.to(h.dtype) * (new_h - h)  # zero gate: exactly h at init
        if new_enc is not enc and enc is not None:
            enc = enc + g_enc.to(enc.dtype) * (new_enc - enc)
        return h, enc, out

    def forward(self, *args, loops: int | None = None, **kwargs):
        """Call exactly like the wrapped block; `loops` overrides `self.loops` for this call."""
        n = _check_loops("loops", self.loops if loops is None else loops,
                         None if self.unroll else self.max_loops)
        bound = self._signature.bind(*args, **kwargs)
        h = bound.arguments[self.hidden_arg]
        if not isinstance(h, torch.Tensor) or h.shape[-1] != self.dim:
            shape = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
            raise bad(self.hidden_arg, shape, f"a tensor whose last dim is {self.dim} (dim)")
        enc = bound.arguments.get(self.encoder_arg) if self.encoder_arg else None
        use_ckpt = self.checkpoint and torch.is_grad_enabled()
        out = None
        halt = self.halting and self.halt_threshold is not None and not self.training
        active = None  # (B, N) bool: tokens still looping, when halting
        for loop in range(n):
            if halt and loop > 0:
                go = torch.sigmoid(self.halt_logits(loop, h)) < self.halt_threshold
                active = go if active is None else active & go
                self.last_halting["skipped"] += int((~active).sum())
                self.last_halting["token_loops"] += active.numel()
            elif halt:
                self.last_halting = {"token_loops": 0, "skipped": 0}
            before = h
            if use_ckpt:
                h, enc, out = _checkpoint(self._one_loop, loop, h, enc, bound, use_reentrant=False)
            else:
                h, enc, out = self._one_loop(loop, h, enc, bound)
            if active is not None:
                h = torch.where(active.unsqueeze(-1), h, before)  # halted tokens keep their state
            for fn in self._loop_hooks.values():
                fn(self, loop, h)
        if isinstance(out, torch.Tensor):
            return h
        rest = list(out)
        rest[0] = h
        if self.encoder_arg is not None and len(rest) > 1:
            rest[1] = enc
        return type(out)(rest) if isinstance(out, tuple) else rest

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, max_loops={self.max_loops}, loops={self.loops}, "
                f"encoder_dim={self.encoder_dim}, gate={self.gate!r}, "
                f"per_token={self.per_token}, checkpoint={self.checkpoint}")
