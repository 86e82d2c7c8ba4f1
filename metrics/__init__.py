"""GAN metrics of the original StyleGAN2 release and StyleGAN2-ADA: FID, KID, IS, PPL, precision/recall, linear
separability. `metric_defaults` names them; `metric_base` runs them on a generator; run_metrics.py is the command."""
