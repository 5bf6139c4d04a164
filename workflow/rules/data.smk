rule data:
    output:
        data="results/{experiment}/data.pt",
        record="results/{experiment}/data.json",
    log:
        "results/logs/data/{experiment}.log",
    benchmark:
        "results/benchmarks/data/{experiment}.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        data=lambda wc: EXPERIMENTS[wc.experiment]["data"],
    script:
        "../../scripts/prepare_data.py"
