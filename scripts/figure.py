"""Rule figure: a figure of config `figures` from its grids' N_eff tables: double_descent
(Figure 1), width_depth (Figure 2), sweeps (N_eff against each grid's varying axis) or measures
(Section 7: N_eff beside other generalization measures)."""
import pandas as pd

from neff.files import log_to
from neff.measure_plots import measures_figure
from neff.plots import double_descent, width_depth
from neff.surface_plots import neff_sweeps

sm = snakemake  # noqa: F821 (snakemake injects it)
spec, threshold, paths = sm.params.figure, sm.params.threshold, [sm.output.pdf, sm.output.png]
with log_to(sm.log[0]):
    tables = dict(zip(sm.params.panels, map(pd.read_csv, sm.input.tables)))
    if spec["kind"] == "double_descent":
        double_descent(pd.concat(tables.values()), spec["z"], threshold, paths, title=sm.params.title)
    elif spec["kind"] == "width_depth":
        width_depth(pd.concat(tables.values()), spec["z"], threshold, paths,
                    contours=spec.get("param_contours"), title=sm.params.title, boundary=spec.get("boundary"))
    elif spec["kind"] == "measures":
        measures_figure(tables, spec["z"], threshold, paths, title=sm.params.title)
    else:
        neff_sweeps(tables, spec["z"], paths, title=sm.params.title)
    print(f"{spec['kind']} figure of {', '.join(tables)} at z = {spec['z']:g}: {', '.join(paths)}")
