rule figure:
    input:
        table=rules.table.output.table,
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
    conda:
        "../../envs/neff.yaml"
    params:
        effdim=config["effdim"],
        contours=lambda wc: config[wc.figure].get("param_contours"),
        title=lambda wc: f"{config['data']['name']}, {config[wc.figure]['model']}",
    script:
        "../../scripts/figure.py"
