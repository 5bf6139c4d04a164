rule blr:
    output:
        table="results/tables/fig4_blr.csv",
        meta="results/tables/fig4_blr.json",
    log:
        "results/logs/bayes/blr.log",
    benchmark:
        "results/benchmarks/bayes/blr.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        blr=config["bayes"]["blr"],
    script:
        "../../scripts/blr.py"


rule bnn:
    output:
        record="results/bayes/bnn/size~{size}/trial~{trial}.json",
    log:
        "results/logs/bayes/bnn/size~{size}/trial~{trial}.log",
    benchmark:
        "results/benchmarks/bayes/bnn/size~{size}/trial~{trial}.tsv"
    wildcard_constraints:
        size=r"\d+",
        trial=r"\d+",
    conda:
        "../../envs/neff.yaml"
    threads: 1
    params:
        bnn=config["bayes"]["bnn"],
    script:
        "../../scripts/bnn.py"


rule bnn_table:
    input:
        records=expand("results/bayes/bnn/{run}.json", run=bnn_runs()),
    output:
        table="results/tables/fig4_bnn.csv",
    log:
        "results/logs/bayes/bnn_table.log",
    benchmark:
        "results/benchmarks/bayes/bnn_table.tsv"
    conda:
        "../../envs/neff.yaml"
    script:
        "../../scripts/bnn_table.py"


rule random_features:
    output:
        table="results/tables/fig8.csv",
        grid="results/tables/fig8_grid.csv",
        meta="results/tables/fig8.json",
    log:
        "results/logs/bayes/random_features.log",
    benchmark:
        "results/benchmarks/bayes/random_features.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        spec=config["random_features"],
    script:
        "../../scripts/random_features.py"


rule figure_contraction:
    input:
        blr=rules.blr.output.table,
        bnn=rules.bnn_table.output.table,
    output:
        pdf=report(
            "results/figures/fig4.pdf",
            caption="../report/fig4.rst",
            category="Figures",
        ),
        png="results/figures/fig4.png",
    log:
        "results/logs/figures/fig4.log",
    benchmark:
        "results/benchmarks/figures/fig4.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        blr=config["bayes"]["blr"],
        bnn=config["bayes"]["bnn"],
    script:
        "../../scripts/figure_contraction.py"


rule figure_random_features:
    input:
        table=rules.random_features.output.table,
        grid=rules.random_features.output.grid,
    output:
        pdf=report(
            "results/figures/fig8.pdf",
            caption="../report/fig8.rst",
            category="Figures",
        ),
        png="results/figures/fig8.png",
    log:
        "results/logs/figures/fig8.log",
    benchmark:
        "results/benchmarks/figures/fig8.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        spec=config["random_features"],
    script:
        "../../scripts/figure_random_features.py"
