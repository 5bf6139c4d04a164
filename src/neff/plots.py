"""The paper's figures, drawn from the tables: one style, PDF and PNG side by side."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .files import atomic_path  # noqa: E402
from .tables import select  # noqa: E402

STYLE = {"figure.dpi": 120, "savefig.dpi": 150, "font.size": 9, "axes.spines.top": False,
         "axes.grid": True, "grid.alpha": 0.3, "legend.frameon": False}


def save(fig, paths: Sequence[str | Path]) -> None:
    """Write ``fig`` to each of ``paths`` (the format from the suffix: .pdf, .png), atomically."""
    for path in map(Path, paths):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], bbox_inches="tight")
    plt.close(fig)


def double_descent(table: pd.DataFrame, z: float, interpolation_threshold: float, paths: Sequence[str | Path],
                   title: str = "") -> None:
    """Figure 1 from a long table: train and test loss against width (left axis), the
    ``certified`` N_eff at ``z`` (right axis); the dotted line marks the first width whose
    train loss is below the threshold."""
    with plt.rc_context(STYLE):
        mean = select(table, z).groupby("width").mean(numeric_only=True).sort_index()
        fig, ax = plt.subplots(figsize=(6, 3.8))
        ax.plot(mean.index, mean["train_loss"], "o-", color="tab:blue", label="train loss")
        ax.plot(mean.index, mean["test_loss"], "s-", color="tab:red", label="test loss")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width")
        ax.set_ylabel("loss")
        interpolating = mean.index[mean["train_loss"] < interpolation_threshold]
        if len(interpolating):
            ax.axvline(interpolating[0], color="grey", ls=":", label="interpolation threshold")
        right = ax.twinx()
        right.plot(mean.index, mean["value"], "^--", color="black", label=f"N_eff (z={z:g})")
        right.set_ylabel("effective dimensionality")
        right.grid(False)
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=4,
                   bbox_to_anchor=(0.5, -0.02))
        fig.subplots_adjust(bottom=0.27)
        ax.set_title(title)
        save(fig, paths)


def width_depth(table: pd.DataFrame, z: float, interpolation_threshold: float, paths: Sequence[str | Path],
                contours: list[float] | None = None, title: str = "") -> None:
    """Figure 2 from a long table: heatmaps of the ``certified`` N_eff at ``z``, test loss and
    train loss over width x depth, with contours of equal parameter count (white) and the
    near-zero-train-loss boundary (dashed)."""
    panels = [("value", f"N_eff (z={z:g})"), ("test_loss", "test loss"), ("train_loss", "train loss")]
    table = select(table, z)
    grid = table.groupby(["depth", "width"]).mean(numeric_only=True)
    depths, widths = sorted(table["depth"].unique()), sorted(table["width"].unique())

    def surface(column):
        return grid[column].unstack("width").reindex(index=depths, columns=widths).to_numpy()

    params = surface("num_params")
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
        for ax, (column, label) in zip(axes, panels):
            image = ax.imshow(surface(column), origin="lower", aspect="auto", cmap="viridis")
            fig.colorbar(image, ax=ax)
            ax.set_xticks(range(len(widths)), [str(w) for w in widths])
            ax.set_yticks(range(len(depths)), [str(d) for d in depths])
            ax.set_xlabel("width")
            ax.set_ylabel("depth")
            if len(widths) > 1 and len(depths) > 1:
                levels = sorted(contours or np.geomspace(np.nanmin(params), np.nanmax(params), 5)[1:-1])
                lines = ax.contour(params, levels=levels, colors="white", linewidths=0.8)
                ax.clabel(lines, fmt=lambda v: f"{v:.2g}", fontsize=6)
                ax.contour(surface("train_loss"), levels=[interpolation_threshold], colors="red",
                           linestyles="--", linewidths=1.2)
            ax.set_title(label)
        proxies = [plt.Line2D([], [], color="grey", lw=0.8, label="equal parameter count"),
                   plt.Line2D([], [], color="red", ls="--", label=f"train loss = {interpolation_threshold:g}")]
        fig.legend(handles=proxies, loc="outside lower center", ncol=2)
        fig.suptitle(title)
        save(fig, paths)


def _mean_band(ax, table: pd.DataFrame, x: str, y: str, **style) -> None:
    """The mean of ``y`` over repeats at each ``x``, with a +-1 standard deviation band."""
    stats = table.groupby(x)[y].agg(["mean", "std"]).fillna(0.0)
    line = ax.plot(stats.index, stats["mean"], **style)[0]
    ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                    color=line.get_color(), alpha=0.2, lw=0)


def posterior_contraction(blr: pd.DataFrame, bnn: pd.DataFrame, blr_spec: dict, bnn_spec: dict,
                          paths: Sequence[str | Path]) -> None:
    """Figure 4. Left: N_eff of the BLR posterior covariance (parameter space) and of the
    function-space covariance against the number of points, the band around n = p shaded.
    Right: a BNN's N_eff from NUTS draws (parameters, functions) and of the MAP Hessian."""
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
        left.plot(blr["n"], blr["param_neff"], color="tab:blue", label="parameter space")
        left.plot(blr["n"], blr["function_neff"], color="tab:red", label="function space")
        left.axvspan(*blr_spec["band"], color="grey", alpha=0.2, label=f"n near p = {blr_spec['features']}")
        left.set_xlabel("number of data points n")
        left.set_ylabel(f"effective dimensionality (z = {blr_spec['z']:g})")
        left.set_title("Bayesian linear regression")
        left.legend()
        _mean_band(right, bnn, "size", "param_neff", marker="o", color="tab:blue",
                   label=f"parameters, NUTS (z = {bnn_spec['z_param']:g})")
        _mean_band(right, bnn, "size", "function_neff", marker="s", color="tab:red",
                   label=f"functions, NUTS (z = {bnn_spec['z_function']:g})")
        _mean_band(right, bnn, "size", "hessian_neff", marker="^", color="black", ls="--",
                   label=f"MAP Hessian (z = {1 / bnn_spec['prior_scale'] ** 2:g})")
        right.set_xscale("log")
        right.set_xlabel("number of data points N")
        right.set_ylabel("effective dimensionality")
        right.set_title(f"Bayesian neural network ({int(bnn['num_params'].iloc[0])} parameters, "
                        f"{int(bnn['num_samples'].iloc[0])} draws)")
        right.legend()
        save(fig, paths)


def random_features(table: pd.DataFrame, z: float, paths: Sequence[str | Path]) -> None:
    """Figure 8: train and test error of minimum-norm least squares (left axis, log scale,
    linear below 0.01 so that the interpolating fits' zero train error shows) and
    min(n, d) - N_eff (right axis) against the number of features d; dotted at d = n."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
        _mean_band(ax, table, "d", "train_mse", color="tab:blue", label="train error")
        _mean_band(ax, table, "d", "test_mse", color="tab:red", label="test error")
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("number of features d")
        ax.set_ylabel("mean squared error")
        ax.axvline(int(table["n"].iloc[0]), color="grey", ls=":", label="d = n")
        right = ax.twinx()
        _mean_band(right, table, "d", "effective_dimensionality", color="black", ls="--",
                   label=f"min(n, d) - N_eff (z = {z:g})")
        right.set_ylabel("min(n, d) - N_eff")
        right.grid(False)
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], loc="upper right")
        save(fig, paths)
