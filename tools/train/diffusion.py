"""The training diffusion of the demo DiT (guided-diffusion's GaussianDiffusion, learned sigma):
linear betas in float64, q_sample, and the loss of the reference training — eps-MSE plus the
variational bound (KL in bits with the mean from a detached eps; discretized Gaussian NLL at t = 0).
Moved out of train_dit.py; shape-generic (images (B, C, H, W) and videos (B, C, T, H, W): per-sample means over
every non-batch axis), which leaves the image case's numbers unchanged.
"""

import math

import numpy as np
import torch


class Diffusion:
    """The reference GaussianDiffusion (linear betas, eps prediction, learned-range sigma,
    loss = MSE + VB with rescale factor num_timesteps/1000 = 1)."""

    def __init__(self, num_timesteps=1000):
        self.T = num_timesteps
        betas = np.linspace(1e-4, 0.02, num_timesteps, dtype=np.float64)
        alphas = 1.0 - betas
        acp = np.cumprod(alphas)
        acp_prev = np.append(1.0, acp[:-1])
        self.betas = betas
        self.acp = acp
        self.sqrt_acp = np.sqrt(acp)
        self.sqrt_1m_acp = np.sqrt(1.0 - acp)
        self.sqrt_recip_acp = np.sqrt(1.0 / acp)
        self.sqrt_recipm1_acp = np.sqrt(1.0 / acp - 1)
        pv = betas * (1.0 - acp_prev) / (1.0 - acp)
        self.post_logvar_clipped = np.log(np.append(pv[1], pv[1:]))
        self.post_c1 = betas * np.sqrt(acp_prev) / (1.0 - acp)
        self.post_c2 = (1.0 - acp_prev) * np.sqrt(alphas) / (1.0 - acp)
        self.log_betas = np.log(betas)

    @staticmethod
    def _ex(arr, t, ndim=4):
        out = torch.from_numpy(arr).to(torch.float32)[t]  # float64 constants applied as float32
        return out.reshape(-1, *([1] * (ndim - 1)))

    def q_sample(self, x0, t, noise):
        n = x0.dim()
        return self._ex(self.sqrt_acp, t, n) * x0 + self._ex(self.sqrt_1m_acp, t, n) * noise

    def q_posterior(self, x0, xt, t):
        n = x0.dim()
        mean = self._ex(self.post_c1, t, n) * x0 + self._ex(self.post_c2, t, n) * xt
        return mean, self._ex(self.post_logvar_clipped, t, n)

    def p_mean_logvar(self, out, xt, t):
        C, n = xt.shape[1], xt.dim()
        eps, v = out[:, :C], out[:, C:]
        min_log = self._ex(self.post_logvar_clipped, t, n)
        max_log = self._ex(self.log_betas, t, n)
        frac = (v + 1) / 2
        logvar = frac * max_log + (1 - frac) * min_log
        x0 = self._ex(self.sqrt_recip_acp, t, n) * xt - self._ex(self.sqrt_recipm1_acp, t, n) * eps
        mean, _ = self.q_posterior(x0, xt, t)
        return mean, logvar

    def training_losses(self, model, x0, t, y):
        noise = torch.randn_like(x0)
        xt = self.q_sample(x0, t, noise)
        out = model(xt, t, y, train=True)
        C = x0.shape[1]
        eps, v = out[:, :C], out[:, C:]
        frozen = torch.cat([eps.detach(), v], dim=1)  # vb term only learns the variance
        true_mean, true_logvar = self.q_posterior(x0, xt, t)
        mean, logvar = self.p_mean_logvar(frozen, xt, t)
        axes = tuple(range(1, x0.dim()))
        kl = normal_kl(true_mean, true_logvar, mean, logvar).mean(dim=axes) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar)
        nll = nll.mean(dim=axes) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl) * (self.T / 1000.0)
        mse = ((noise - eps) ** 2).mean(dim=axes)
        return mse, vb


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + ((mean1 - mean2) ** 2) * torch.exp(-logvar2))


def approx_standard_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min,
                                   torch.log(cdf_delta.clamp(min=1e-12))))


