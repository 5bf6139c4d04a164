rule train:
    input:
        data=rules.data.output.data,
    output:
        model=f"{MODEL_DIR}/model.pt",
        metrics=f"{MODEL_DIR}/metrics.csv",
        final=f"{MODEL_DIR}/final.json",
    log:
        f"results/logs/{EXPERIMENT}/train/model~{{model}}/width~{{width}}/depth~{{depth}}/seed~{{seed}}.log",
    benchmark:
        f"results/benchmarks/{EXPERIMENT}/train/model~{{model}}/width~{{width}}/depth~{{depth}}/seed~{{seed}}.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        train=config["train"],
        model_kwargs=lambda wc: config["model_kwargs"].get(wc.model, {}),
        checkpoint=f"{MODEL_DIR}/train.ckpt.pt",
    script:
        "../../scripts/train.py"
