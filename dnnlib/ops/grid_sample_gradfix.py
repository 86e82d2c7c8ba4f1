"""Bilinear `grid_sample` whose input gradient can be differentiated again.

The augmentation pipe resamples real images before the discriminator, and
the R1 penalty differentiates the gradient with respect to those images, so
the resampling needs a second derivative. Only recent torch builds give
`F.grid_sample` one; these autograd Functions give it on every torch 2.x:
the input gradient is the adjoint of sampling (`grid_sampler_2d_backward`),
and the derivative of that adjoint with respect to the incoming gradient is
sampling again. Gradients with respect to the grid are first order only.
"""

import torch
import torch.nn.functional as F

# Arguments of aten::grid_sampler_2d_backward for mode='bilinear', padding_mode='zeros'.
_BILINEAR = 0
_ZEROS = 0


def grid_sample(input, grid):
    """F.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False).

    input: [N, C, Hin, Win]; grid: [N, Hout, Wout, 2] of (x, y) in [-1, 1]
    (pixel edges at +-1); returns [N, C, Hout, Wout]. Differentiable to any
    order with respect to `input`; to first order with respect to `grid`.
    """
    assert isinstance(input, torch.Tensor) and input.ndim == 4
    assert isinstance(grid, torch.Tensor) and grid.ndim == 4 and grid.shape[3] == 2
    assert grid.shape[0] == input.shape[0] and grid.dtype == input.dtype
    return _GridSample2d.apply(input, grid)


class _GridSample2d(torch.autograd.Function):
    """Forward: torch's bilinear sampling. Backward: `_GridSample2dBackward`."""

    @staticmethod
    def forward(ctx, input, grid):
        ctx.save_for_backward(input, grid)
        return F.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False)

    @staticmethod
    def backward(ctx, grad_output):
        input, grid = ctx.saved_tensors
        grad_input, grad_grid = _GridSample2dBackward.apply(grad_output, input, grid, ctx.needs_input_grad[1])
        return (grad_input if ctx.needs_input_grad[0] else None,
                grad_grid if ctx.needs_input_grad[1] else None)


class _GridSample2dBackward(torch.autograd.Function):
    """(grad_output, input, grid) -> (grad_input, grad_grid) of bilinear sampling.

    grad_input = S^T grad_output, where S is the (linear) sampling operator
    fixed by the grid, so its derivative with respect to grad_output is S
    itself, i.e. another grid_sample, and it does not depend on the input.
    Differentiating grad_grid, or grad_input with respect to the grid, is
    not implemented and raises rather than returning a wrong zero.
    """

    @staticmethod
    def forward(ctx, grad_output, input, grid, want_grad_grid):
        op = torch.ops.aten.grid_sampler_2d_backward
        grad_input, grad_grid = op(grad_output, input, grid, _BILINEAR, _ZEROS, False, [True, want_grad_grid])
        ctx.save_for_backward(grid)
        ctx.set_materialize_grads(False)  # Unused outputs then arrive as None.
        return grad_input, (grad_grid if want_grad_grid else None)

    @staticmethod
    def backward(ctx, grad2_grad_input, grad2_grad_grid):
        grid, = ctx.saved_tensors
        if grad2_grad_grid is not None:
            raise NotImplementedError('grid_sample_gradfix: the grid gradient is first order only')
        if grad2_grad_input is not None and ctx.needs_input_grad[2]:
            raise NotImplementedError('grid_sample_gradfix: no second derivative with respect to the grid')
        grad2_grad_output = None
        if grad2_grad_input is not None and ctx.needs_input_grad[0]:
            grad2_grad_output = grid_sample(grad2_grad_input, grid)
        return grad2_grad_output, None, None, None
