rule spectrum:
    input:
        data=rules.data.output.data,
        model=rules.train.output.model,
    output:
        spectrum=f"{MODEL_DIR}/spectrum.npz",
        record=f"{MODEL_DIR}/spectrum.json",
    log:
        f"results/logs/{EXPERIMENT}/spectrum/model~{{model}}/width~{{width}}/depth~{{depth}}/seed~{{seed}}.log",
    benchmark:
        f"results/benchmarks/{EXPERIMENT}/spectrum/model~{{model}}/width~{{width}}/depth~{{depth}}/seed~{{seed}}.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        spectrum=config["spectrum"],
        model_kwargs=lambda wc: config["model_kwargs"].get(wc.model, {}),
    script:
        "../../scripts/spectrum.py"
