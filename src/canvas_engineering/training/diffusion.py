"""The canvas diffusion objective and a DDIM sampler.

Shape glossary: B batch, n_r positions of region r (t-major), d_r data values per position.

Only the *output* part of the canvas is diffused (seed 002 §3.1: "the diffusion process adds
noise to output positions only"): future frames (t >= t_current) of `is_output` regions. Context
positions keep their clean data at every noise level and condition the prediction.

Time is continuous, t ∈ [0, 1], with x_t = α(t)·x0 + σ(t)·ε (variance preserving, α² + σ² = 1):
- "cosine": α = cos θ, σ = sin θ, θ = t·θ_max (Nichol & Dhariwal 2021 without the offset);
  θ_max = atan(e⁵) puts log-SNR(1) at −10 instead of −∞ so ε → x0 stays finite at t = 1;
- "linear": the continuous DDPM linear β schedule (Song et al. 2021, VP-SDE): log α² =
  −(β₀t + ½(β₁ − β₀)t²), β₀ = 0.1, β₁ = 20 (log-SNR(1) ≈ −10 too).
Both give α = 1, σ = 0 at t = 0. Prediction targets: "eps" (ε) or "v" (α·ε − σ·x0, Salimans &
Ho 2022).
"""

from __future__ import annotations

import math

import torch

from canvas_engineering.errors import CanvasError, bad
from canvas_engineering.spec.layout import CanvasLayout

SCHEDULES = ("cosine", "linear")
PREDICTIONS = ("eps", "v")
_THETA_MAX = math.atan(math.exp(5.0))  # cosine: log-SNR(1) = −2·log tan θ_max = −10
_BETA0, _BETA1 = 0.1, 20.0  # linear: DDPM's β ∈ [1e-4, 0.02] over 1000 steps, made continuous


class CanvasDiffusion:
    """Noise, loss and sampling on the output positions of a layout (see module docstring)."""

    def __init__(self, layout: CanvasLayout, *, schedule: str = "cosine",
                 prediction: str = "eps"):
        if not isinstance(layout, CanvasLayout):
            raise bad("layout", type(layout).__name__, "a CanvasLayout")
        if schedule not in SCHEDULES:
            raise bad("schedule", schedule, f"one of {list(SCHEDULES)}")
        if prediction not in PREDICTIONS:
            raise bad("prediction", prediction, f"one of {list(PREDICTIONS)}")
        self.layout, self.schedule, self.prediction = layout, schedule, prediction
        self._output = layout.output_mask()  # (N,) bool
        self._weight = layout.loss_weight_mask()  # (N,) float

    # -- schedule -------------------------------------------------------------------------------

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """α(t), σ(t) for t ∈ [0, 1] (any shape, float32 out)."""
        t = torch.as_tensor(t, dtype=torch.float32)
        if self.schedule == "cosine":
            theta = t * _THETA_MAX
            return torch.cos(theta), torch.sin(theta)
        log_a2 = -(_BETA0 * t + 0.5 * (_BETA1 - _BETA0) * t * t)
        return torch.exp(0.5 * log_a2), torch.sqrt(-torch.expm1(log_a2))  # expm1: exact σ near 0

    # -- masks ----------------------------------------------------------------------------------

    def noise_mask(self, region: str) -> torch.Tensor:
        """Which of the region's positions are diffused (its output positions). (n_r,) bool"""
        return self._output[self.layout.region_index_tensor(region)]

    def loss_weights(self, region: str) -> torch.Tensor:
        """`loss_weight_mask` at the region's diffused positions, 0 elsewhere. (n_r,) float"""
        idx = self.layout.region_index_tensor(region)
        return self._weight[idx] * self._output[idx]

    def _check(self, x0: dict, t: torch.Tensor, noise: dict | None = None) -> int:
        """Validate region dicts (B, n_r, d_r) and t (B,); return B."""
        if not isinstance(x0, dict) or not x0:
            raise bad("x0", type(x0).__name__, "a non-empty dict of region -> (B, n_r, d_r)")
        if noise is not None and (not isinstance(noise, dict) or set(noise) != set(x0)):
            got = sorted(noise) if isinstance(noise, dict) else type(noise).__name__
            raise CanvasError(f"noise: got regions {got}, expected the regions of x0 "
                              f"{sorted(x0)}")
        B = None
        for r, v in x0.items():
            n = self.layout.region_size(r)  # unknown region: error listing the valid ones
            if not isinstance(v, torch.Tensor) or v.dim() != 3 or v.shape[1] != n \
                    or (B is not None and v.shape[0] != B):
                shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                raise bad(f"x0[{r!r}]", shape, f"a tensor ({B or 'B'}, {n}, d_r)")
            B = v.shape[0]
            if noise is not None and (not isinstance(noise[r], torch.Tensor)
                                      or noise[r].shape != v.shape):
                got = getattr(noise[r], "shape", type(noise[r]).__name__)
                raise bad(f"noise[{r!r}]", tuple(got), f"the shape of x0[{r!r}] {tuple(v.shape)}")
        if t is not None and (not isinstance(t, torch.Tensor) or tuple(t.shape) != (B,)):
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else t
            raise bad("t", shape, f"a tensor of shape ({B},) with values in [0, 1]")
        return B

    def _mix(self, x: dict, t: torch.Tensor, noise: dict) -> dict:
        out = {}
        for r, x0 in x.items():
            a, s = (v.to(x0.device, x0.dtype)[:, None, None] for v in self.alpha_sigma(t))
            m = self.noise_mask(r).to(x0.device)[None, :, None]  # (1, n_r, 1)
            out[r] = torch.where(m, a * x0 + s * noise[r], x0)  # context stays x0 bit-for-bit
        return out

    # -- training -------------------------------------------------------------------------------

    def q_sample(self, x0: dict, t: torch.Tensor, noise: dict) -> dict:
        """x_t = α(t)·x0 + σ(t)·noise at output positions, x0 elsewhere; {region: (B, n_r, d_r)}."""
        self._check(x0, t, noise)
        return self._mix(x0, t, noise)

    def target(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The prediction target of one region (B, n_r, d_r): ε, or v = α·ε − σ·x0."""
        if self.prediction == "eps":
            return noise
        a, s = (v.to(x0.device, x0.dtype)[:, None, None] for v in self.alpha_sigma(t))
        return a * noise - s * x0

    def loss(self, model, x0: dict, t: torch.Tensor, noise: dict, *,
             model_kwargs: dict | None = None,
             auxiliary: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted MSE of the prediction target on the diffused positions.

        Per position: MSE over d_r, weighted by `loss_weight_mask`; total = Σ w·mse / Σ w over
        the batch and every region. Per-region losses (same weighting, detached) are returned
        for the regions that have weighted positions. `model_kwargs` go to the model as they are
        (DiT's convention: the objective does not know the model's options). With `auxiliary`
        the model is called with `auxiliary=True` and returns (predictions, region ->
        (auxiliary prediction of the same target, weight a)); each adds a·Σ w·mse / Σ w to the
        total (deep supervision; `BackboneConfig.video_unet_aux`), not to the per-region losses.
        """
        B = self._check(x0, t, noise)
        kwargs = {**(model_kwargs or {}), **({"auxiliary": True} if auxiliary else {})}
        pred = model(self._mix(x0, t, noise), t, **kwargs)
        pred, extra = pred if auxiliary else (pred, {})
        num, den, per_region = 0.0, 0.0, {}
        targets = {r: self.target(x0_r, t, noise[r]).float() for r, x0_r in x0.items()}
        weights = {r: self.loss_weights(r).to(x0_r.device) for r, x0_r in x0.items()}  # (n_r,)
        for r in x0:
            w = weights[r]
            err = (pred[r].float() - targets[r]).pow(2).mean(-1)  # (B, n_r)
            r_num, r_den = (err * w).sum(), w.sum() * B
            num, den = num + r_num, den + r_den
            if r_den > 0:
                per_region[r] = (r_num / r_den).detach()
        if not den > 0:
            raise CanvasError(f"loss: regions {sorted(x0)} have no diffused position with a "
                              "loss weight > 0 (is_output, t >= t_current, loss_weight > 0)")
        for r, (p, a) in extra.items():
            num = num + a * ((p.float() - targets[r]).pow(2).mean(-1) * weights[r]).sum()
        return num / den, per_region

    # -- sampling -------------------------------------------------------------------------------

    def _x0_eps(self, pred: torch.Tensor, x: torch.Tensor, a, s):
        """(x0, ε) estimates from the model's prediction at (α, σ)."""
        if self.prediction == "eps":
            return (x - s * pred) / a, pred
        return a * x - s * pred, s * x + a * pred

    @torch.no_grad()
    def sample(self, model, x0_context: dict, *, steps: int = 20,
               generator: torch.Generator | None = None, model_kwargs: dict | None = None) -> dict:
        """DDIM (η = 0) roll-out of the output positions given the context.

        Starts from pure noise at the output positions (the values of `x0_context` there are
        ignored), keeps context positions equal to `x0_context` at every step, and walks t from
        1 to 0 in `steps` uniform steps; `model_kwargs` go to every model call. Returns the final
        x0 estimate {region: (B, n_r, d_r)}.
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise bad("steps", steps, "an int >= 1")
        B = self._check(x0_context, None)
        kwargs = model_kwargs or {}
        masks = {r: self.noise_mask(r).to(v.device)[None, :, None] for r, v in x0_context.items()}
        x = {r: torch.where(masks[r], torch.randn(v.shape, generator=generator, dtype=v.dtype,
                                                  device=v.device), v)
             for r, v in x0_context.items()}
        ts = torch.linspace(1.0, 0.0, steps + 1)
        x0_hat = x
        for i in range(steps):
            t_now = ts[i].expand(B)  # (B,)
            pred = model(x, t_now.to(next(iter(x.values())).device), **kwargs)
            a, s = self.alpha_sigma(ts[i])
            a_next, s_next = self.alpha_sigma(ts[i + 1])
            x0_hat, x_next = {}, {}
            for r, ctx in x0_context.items():
                x0_r, eps_r = self._x0_eps(pred[r].to(ctx.dtype), x[r], a, s)
                x0_hat[r] = torch.where(masks[r], x0_r, ctx)
                x_next[r] = torch.where(masks[r], a_next * x0_r + s_next * eps_r, ctx)
            x = x_next
        return x0_hat
