# Figures drawn from N_eff tables (config `figures`): Figures 1 and 2, N_eff sweeps, Section 7's
# generalization measures.
rule figure:
    input:
        tables=figure_tables,
    output:
        pdf=report(
            "results/figures/{figure}.pdf",
            caption="../report/figures.rst",
            category="Figures",
        ),
        png="results/figures/{figure}.png",
    log:
        "results/logs/figures/{figure}.log",
    benchmark:
        "results/benchmarks/figures/{figure}.tsv"
    wildcard_constraints:
        figure=names(TABLE_FIGURES),
    conda:
        "../../envs/neff.yaml"
    params:
        figure=lambda wc: FIGURES[wc.figure],
        threshold=figure_threshold,
        panels=figure_panels,
        title=lambda wc: figure_title(wc.figure),
    script:
        "../../scripts/figure.py"


# N_eff and test loss over training (config `figures` of kind training, on a tracked grid).
rule training_figure:
    input:
        unpack(training_files),
    output:
        pdf=report(
            "results/figures/{figure}.pdf",
            caption="../report/figures.rst",
            category="Figures",
        ),
        png="results/figures/{figure}.png",
    log:
        "results/logs/figures/{figure}.log",
    benchmark:
        "results/benchmarks/figures/{figure}.tsv"
    wildcard_constraints:
        figure=names(TRAINING_FIGURES),
    conda:
        "../../envs/neff.yaml"
    params:
        figure=lambda wc: FIGURES[wc.figure],
        title=lambda wc: figure_title(wc.figure),
    script:
        "../../scripts/figure_training.py"
