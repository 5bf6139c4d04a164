"""Side-by-side benchmarks of neff against PyHessian, hessian-eigenthings and curvlinops."""
