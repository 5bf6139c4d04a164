# One spectrum per model: every eigenpair (dense), or the certified top k (lanczos, eigsh) with
# the paper's Ritz values and deflated SLQ probes; a killed job resumes from its checkpoints
# ({MODEL}/spectrum.ckpt.*.pt, removed when the job ends). The eigenvectors are kept in the .npz
# only for the models that a study draws planes around.
rule spectrum:
    input:
        data=rules.data.output.data,
        model=rules.train.output.model,
    output:
        spectrum=f"{MODEL}/spectrum.npz",
        record=f"{MODEL}/spectrum.json",
    log:
        f"results/logs/spectrum/{MODEL_LOG}.log",
    benchmark:
        f"results/benchmarks/spectrum/{MODEL_LOG}.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        spectrum=lambda wc: EXPERIMENTS[wc.experiment]["spectrum"],
        z=lambda wc: EXPERIMENTS[wc.experiment]["effdim"]["z"],
        model_kwargs=model_kwargs,
        eigenvectors=keeps_eigenvectors,
        checkpoint=f"{MODEL}/spectrum.ckpt",
    script:
        "../../scripts/spectrum.py"
