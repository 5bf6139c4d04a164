rule spectrum:
    input:
        data=rules.data.output.data,
        model=rules.train.output.model,
    output:
        spectrum=f"{MODEL_DIR}/spectrum.npz",
        record=f"{MODEL_DIR}/spectrum.json",
    params:
        spectrum=config["spectrum"],
        model_kwargs=lambda wc: config["model_kwargs"].get(wc.model, {}),
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    log:
        f"results/logs/{EXPERIMENT}/spectrum/model~{{model}}/width~{{width}}/depth~{{depth}}/seed~{{seed}}.log",
    benchmark:
        f"results/benchmarks/{EXPERIMENT}/spectrum/model~{{model}}/width~{{width}}/depth~{{depth}}/seed~{{seed}}.tsv"
    conda:
        "../../envs/neff.yaml"
    script:
        "../../scripts/spectrum.py"
