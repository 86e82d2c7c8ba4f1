"""The linear SVM of the linear separability metric: scikit-learn's LinearSVC with its defaults (the original's
classifier), i.e. min_w 0.5 |w|^2 + C sum_i max(0, 1 - y_i (w.x_i + b))^2 with C = 1 and the intercept b learned as
the weight of a constant feature 1 (intercept_scaling=1, so b is regularised too).

The problem is strictly convex, so its minimiser is unique; here it is found to high precision by Newton's method
(a generalised Hessian for the piecewise-quadratic loss, backtracking line search) in float64, with no dependency on
scikit-learn. liblinear's solver, which LinearSVC runs, stops at a looser tolerance (and at 1000 iterations), so its
predictions may differ on points within that tolerance of the boundary."""

import numpy as np


def fit_linear_svm(x, y, C=1.0, tol=1e-9, max_iter=100):
    """(w [D], b) of the squared-hinge SVM on x [N, D] with binary targets y [N] (class 1: positive side)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y)
    assert x.ndim == 2 and y.shape == (len(x),), f"inputs {x.shape} and targets {y.shape} do not match"
    features = np.hstack([x, np.ones([len(x), 1])])
    sign = np.where(y == 1, 1.0, -1.0)

    def objective(w):
        return 0.5 * w @ w + C * np.square(np.maximum(1 - sign * (features @ w), 0)).sum()

    w = np.zeros(features.shape[1])
    grad_norm0 = None
    for _ in range(max_iter):
        margin = 1 - sign * (features @ w)
        active = margin > 0
        grad = w - 2 * C * features[active].T @ (sign[active] * margin[active])
        grad_norm = np.linalg.norm(grad)
        grad_norm0 = grad_norm if grad_norm0 is None else grad_norm0
        if grad_norm <= tol * max(grad_norm0, 1.0):
            break
        hessian = np.eye(len(w)) + 2 * C * features[active].T @ features[active]
        step = -np.linalg.solve(hessian, grad)
        f0, slope, scale = objective(w), grad @ step, 1.0
        while objective(w + scale * step) > f0 + 1e-4 * scale * slope and scale > 1e-12:
            scale /= 2
        w = w + scale * step
    return w[:-1], w[-1]


def predict(w, b, x):
    """Predicted classes (0 or 1) of x [N, D]."""
    return (np.asarray(x, np.float64) @ w + b > 0).astype(np.int64)
