"""Rule surfaces_figure: log train loss on each plane of a study (Section 5 or Appendix A.1)."""
import pandas as pd

from neff.surface_plots import loss_planes, plane_label

sm = snakemake  # noqa: F821 (snakemake injects it)
surfaces = pd.read_csv(sm.input.surfaces)
loss_planes({plane_label(spec): surfaces[surfaces["plane"] == name] for name, spec in sm.params.planes.items()},
            sm.output.pdf, title=sm.params.title)
