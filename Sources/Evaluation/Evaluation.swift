// Evaluation module: MAE, ME, PSNR and SSIM of a synthetic CT against a reference CT (SynthRAD definitions).
