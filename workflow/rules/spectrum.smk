# One spectrum per model: every eigenpair (dense), or the certified top k (lanczos, eigsh) with
# the paper's Ritz values and deflated SLQ probes; a killed job resumes from its checkpoints
# ({MODEL}/spectrum.ckpt.*.pt, removed when the job ends). The eigenvectors are kept in the .npz
# only for the models that a study draws planes around. With resources.spectrum_ranks > 1 the job
# starts that many processes (one GPU each where gpu > 0), each with a shard of the data.
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
        gpu=config["resources"]["gpu"] * config["resources"]["spectrum_ranks"],
        nodes=config["resources"]["spectrum_nodes"],
    params:
        spectrum=lambda wc: EXPERIMENTS[wc.experiment]["spectrum"],
        z=lambda wc: EXPERIMENTS[wc.experiment]["effdim"]["z"],
        model_kwargs=model_kwargs,
        eigenvectors=keeps_eigenvectors,
        checkpoint=f"{MODEL}/spectrum.ckpt",
        ranks=config["resources"]["spectrum_ranks"],
        nodes=config["resources"]["spectrum_nodes"],
    script:
        "../../scripts/spectrum.py"
