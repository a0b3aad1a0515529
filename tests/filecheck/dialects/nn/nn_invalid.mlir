// RUN: nnjit-opt %s --verify-diagnostics --split-input-file | filecheck %s

// One case per verifier rule of nnjit/dialects/nn.py, in the order of that file. Ops are written in the
// generic form so that types the custom form would infer can be wrong on purpose.

// constant: value type differs
func.func @constant_value_type_differs() {
  %0 = "nn.constant"() <{value = dense<[1, 2]> : tensor<2xi64>}> : () -> tensor<2xi32>
  func.return
}
// CHECK: nn.constant: value type tensor<2xi64> differs from result tensor<2xi32>

// -----

// binary: operand element types differ
func.func @binary_operand_element_types_differ(%f4: tensor<4xf32>, %i4: tensor<4xi64>) {
  %0 = "nn.add"(%f4, %i4) : (tensor<4xf32>, tensor<4xi64>) -> tensor<4xf32>
  func.return
}
// CHECK: nn.add: operand element types differ: tensor<4xf32> and tensor<4xi64>

// -----

// binary: result element type
func.func @binary_result_element_type(%f4: tensor<4xf32>) {
  %0 = "nn.mul"(%f4, %f4) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf16>
  func.return
}
// CHECK: nn.mul: result element type of tensor<4xf16> is wrong

// -----

// comparison: result must be i1
func.func @comparison_result_must_be_i1(%f4: tensor<4xf32>) {
  %0 = "nn.less"(%f4, %f4) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: nn.less: result element type of tensor<4xf32> is wrong

// -----

// binary: shapes do not broadcast
func.func @binary_shapes_do_not_broadcast(%f4: tensor<4xf32>, %f3: tensor<3xf32>) {
  %0 = "nn.add"(%f4, %f3) : (tensor<4xf32>, tensor<3xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: nn.add: shapes (4,) and (3,) do not broadcast

// -----

// binary: result shape
func.func @binary_result_shape(%f4: tensor<4xf32>) {
  %0 = "nn.sub"(%f4, %f4) : (tensor<4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  func.return
}
// CHECK: nn.sub: result type tensor<2x4xf32> does not match the inferred shape (4,)

// -----

// unary: result type is operand type
func.func @unary_result_type_is_operand_type(%f4: tensor<4xf32>) {
  %0 = "nn.exp"(%f4) : (tensor<4xf32>) -> tensor<3xf32>
  func.return
}
// CHECK: result 'result' at position 0 does not verify:
// CHECK-NEXT: attribute tensor<4xf32> expected from variable 'T', but got tensor<3xf32>

// -----

// gelu: approximate
func.func @gelu_approximate(%f4: tensor<4xf32>) {
  %0 = "nn.gelu"(%f4) <{approximate = "fast"}> : (tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: nn.gelu: approximate must be "none" or "tanh", got "fast"

// -----

// where: condition i1
func.func @where_condition_i1(%f4: tensor<4xf32>) {
  %0 = "nn.where"(%f4, %f4, %f4) : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: nn.where: condition must be i1, got tensor<4xf32>

// -----

// where: branch types
func.func @where_branch_types(%b4: tensor<4xi1>, %f4: tensor<4xf32>, %i4: tensor<4xi64>) {
  %0 = "nn.where"(%b4, %f4, %i4) : (tensor<4xi1>, tensor<4xf32>, tensor<4xi64>) -> tensor<4xf32>
  func.return
}
// CHECK: nn.where: branch types differ: tensor<4xf32> and tensor<4xi64>

// -----

// where: shapes
func.func @where_shapes(%b4: tensor<4xi1>, %f4: tensor<4xf32>, %f3: tensor<3xf32>) {
  %0 = "nn.where"(%b4, %f4, %f3) : (tensor<4xi1>, tensor<4xf32>, tensor<3xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: nn.where: shapes (4,) and (4,) and (3,) do not broadcast

// -----

// cast: shape
func.func @cast_shape(%f4: tensor<4xf32>) {
  %0 = "nn.cast"(%f4) : (tensor<4xf32>) -> tensor<2x2xf16>
  func.return
}
// CHECK: nn.cast: shape changes from tensor<4xf32> to tensor<2x2xf16>

// -----

// matmul: contraction
func.func @matmul_contraction(%m23: tensor<2x3xf32>) {
  %0 = "nn.matmul"(%m23, %m23) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.matmul: matmul contraction mismatch: (2, 3) @ (2, 3)

// -----

// matmul: result
func.func @matmul_result(%m23: tensor<2x3xf32>, %m34: tensor<3x4xf32>) {
  %0 = "nn.matmul"(%m23, %m34) : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.matmul: result type tensor<2x3xf32> does not match the inferred shape (2, 4)

// -----

// gemm: rank
func.func @gemm_rank(%f4: tensor<4xf32>, %m34: tensor<3x4xf32>) {
  %0 = "nn.gemm"(%f4, %m34) : (tensor<4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  func.return
}
// CHECK: nn.gemm: gemm operands must be 2-D, got (4,) and (3, 4)

// -----

// gemm: contraction
func.func @gemm_contraction(%m23: tensor<2x3xf32>) {
  %0 = "nn.gemm"(%m23, %m23) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.gemm: gemm contraction mismatch: (2, 3) and (2, 3)

// -----

// gemm: bias
func.func @gemm_bias(%m23: tensor<2x3xf32>, %m34: tensor<3x4xf32>, %f3: tensor<3xf32>) {
  %0 = "nn.gemm"(%m23, %m34, %f3) : (tensor<2x3xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<2x4xf32>
  func.return
}
// CHECK: nn.gemm: shapes (3,) and (2, 4) do not broadcast

// -----

// conv2d: channels
func.func @conv2d_channels(%img: tensor<1x3x8x8xf32>, %k: tensor<6x3x3x3xf32>) {
  %0 = "nn.conv2d"(%img, %k) <{strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 2 : i64}> : (tensor<1x3x8x8xf32>, tensor<6x3x3x3xf32>) -> tensor<1x6x6x6xf32>
  func.return
}
// CHECK: nn.conv2d: conv2d channels: input (1, 3, 8, 8), weight (6, 3, 3, 3), group 2

// -----

// conv2d: window
func.func @conv2d_window(%img: tensor<1x3x8x8xf32>, %kbig: tensor<6x3x9x9xf32>) {
  %0 = "nn.conv2d"(%img, %kbig) <{strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64}> : (tensor<1x3x8x8xf32>, tensor<6x3x9x9xf32>) -> tensor<1x6x1x1xf32>
  func.return
}
// CHECK: nn.conv2d: window 9 (dilation 1) does not fit input 8 with pads

// -----

// conv2d: rank
func.func @conv2d_rank(%m23: tensor<2x3xf32>, %k: tensor<6x3x3x3xf32>) {
  %0 = "nn.conv2d"(%m23, %k) <{strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64}> : (tensor<2x3xf32>, tensor<6x3x3x3xf32>) -> tensor<1x6x6x6xf32>
  func.return
}
// CHECK: nn.conv2d: conv2d takes NCHW input and OIHW weight, got (2, 3) and (6, 3, 3, 3)

// -----

// conv2d: result
func.func @conv2d_result(%img: tensor<1x3x8x8xf32>, %k: tensor<6x3x3x3xf32>) {
  %0 = "nn.conv2d"(%img, %k) <{strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64}> : (tensor<1x3x8x8xf32>, tensor<6x3x3x3xf32>) -> tensor<1x6x8x8xf32>
  func.return
}
// CHECK: nn.conv2d: result type tensor<1x6x8x8xf32> does not match the inferred shape (1, 6, 6, 6)

// -----

// pool: rank
func.func @pool_rank(%m23: tensor<2x3xf32>) {
  %0 = "nn.max_pool2d"(%m23) <{kernel = array<i64: 2, 2>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>}> : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.max_pool2d: pool2d takes NCHW input, got (2, 3)

// -----

// pool: result
func.func @pool_result(%img: tensor<1x3x8x8xf32>) {
  %0 = "nn.avg_pool2d"(%img) <{kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>}> : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  func.return
}
// CHECK: nn.avg_pool2d: result type tensor<1x3x8x8xf32> does not match the inferred shape (1, 3, 4, 4)

// -----

// softmax: axis
func.func @softmax_axis(%m23: tensor<2x3xf32>) {
  %0 = "nn.softmax"(%m23) <{axis = 2 : i64}> : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.softmax: axis 2 is out of range for rank 2

// -----

// layer_norm: scale
func.func @layer_norm_scale(%m23: tensor<2x3xf32>, %f4: tensor<4xf32>) {
  %0 = "nn.layer_norm"(%m23, %f4) <{axis = -1 : i64, epsilon = 1.0e-05 : f32}> : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.layer_norm: shapes (4,) and (3,) do not broadcast

// -----

// layer_norm: scale broadcasts, but not to the normalised dims
func.func @layer_norm_scale_broadcasts_but_not_to_the_normalised_dims(%m23: tensor<2x3xf32>) {
  %0 = "nn.layer_norm"(%m23, %m23) <{axis = -1 : i64, epsilon = 1.0e-05 : f32}> : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.layer_norm: tensor<2x3xf32> does not broadcast to the normalised dims (3,)

// -----

// rms_norm: axis
func.func @rms_norm_axis(%m23: tensor<2x3xf32>, %f3: tensor<3xf32>) {
  %0 = "nn.rms_norm"(%m23, %f3) <{axis = -3 : i64, epsilon = 1.0e-05 : f32}> : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.rms_norm: axis -3 is out of range for rank 2

// -----

// reduce: no axes
func.func @reduce_no_axes(%m23: tensor<2x3xf32>) {
  %0 = "nn.reduce_sum"(%m23) <{axes = array<i64>}> : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.reduce_sum: a reduction needs at least one axis

// -----

// reduce: result
func.func @reduce_result(%m23: tensor<2x3xf32>) {
  %0 = "nn.reduce_mean"(%m23) <{axes = array<i64: 1>}> : (tensor<2x3xf32>) -> tensor<3xf32>
  func.return
}
// CHECK: nn.reduce_mean: result type tensor<3xf32> does not match the inferred shape (2,)

// -----

// reduce: axis
func.func @reduce_axis(%m23: tensor<2x3xf32>) {
  %0 = "nn.reduce_max"(%m23) <{axes = array<i64: 2>}> : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}
// CHECK: nn.reduce_max: axis 2 is out of range for rank 2

// -----

// transpose: perm
func.func @transpose_perm(%m23: tensor<2x3xf32>) {
  %0 = "nn.transpose"(%m23) <{perm = array<i64: 0, 0>}> : (tensor<2x3xf32>) -> tensor<2x2xf32>
  func.return
}
// CHECK: nn.transpose: (0, 0) is not a permutation of the 2 dims of (2, 3)

// -----

// transpose: result
func.func @transpose_result(%m23: tensor<2x3xf32>) {
  %0 = "nn.transpose"(%m23) <{perm = array<i64: 1, 0>}> : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.transpose: result type tensor<2x3xf32> does not match the inferred shape (3, 2)

// -----

// reshape: element type
func.func @reshape_element_type(%m23: tensor<2x3xf32>) {
  %0 = "nn.reshape"(%m23) : (tensor<2x3xf32>) -> tensor<6xf16>
  func.return
}
// CHECK: nn.reshape: element type changes from tensor<2x3xf32> to tensor<6xf16>

// -----

// reshape: size
func.func @reshape_size(%m23: tensor<2x3xf32>) {
  %0 = "nn.reshape"(%m23) : (tensor<2x3xf32>) -> tensor<5xf32>
  func.return
}
// CHECK: nn.reshape: tensor<2x3xf32> and tensor<5xf32> differ in size

// -----

// expand: broadcast
func.func @expand_broadcast(%m23: tensor<2x3xf32>) {
  %0 = "nn.expand"(%m23) : (tensor<2x3xf32>) -> tensor<2x4xf32>
  func.return
}
// CHECK: nn.expand: tensor<2x3xf32> does not broadcast to tensor<2x4xf32>

// -----

// concat: no inputs
func.func @concat_no_inputs() {
  %0 = "nn.concat"() <{axis = 0 : i64}> : () -> tensor<2x3xf32>
  func.return
}
// CHECK: nn.concat: concat needs at least one input

// -----

// concat: shapes
func.func @concat_shapes(%m23: tensor<2x3xf32>, %m34: tensor<3x4xf32>) {
  %0 = "nn.concat"(%m23, %m34) <{axis = 0 : i64}> : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<5x3xf32>
  func.return
}
// CHECK: nn.concat: cannot concatenate (2, 3) and (3, 4) along axis 0

// -----

// slice: one per dim
func.func @slice_one_per_dim(%m23: tensor<2x3xf32>) {
  %0 = "nn.slice"(%m23) <{starts = array<i64: 0>, ends = array<i64: 1>, steps = array<i64: 1>}> : (tensor<2x3xf32>) -> tensor<1x3xf32>
  func.return
}
// CHECK: nn.slice: slice needs one start/end/step per dimension of (2, 3)

// -----

// slice: step 0
func.func @slice_step_0(%m23: tensor<2x3xf32>) {
  %0 = "nn.slice"(%m23) <{starts = array<i64: 0, 0>, ends = array<i64: 1, 3>, steps = array<i64: 0, 1>}> : (tensor<2x3xf32>) -> tensor<1x3xf32>
  func.return
}
// CHECK: nn.slice: slice step must not be 0

// -----

// gather: indices
func.func @gather_indices(%m23: tensor<2x3xf32>, %f4: tensor<4xf32>) {
  %0 = "nn.gather"(%m23, %f4) <{axis = 1 : i64}> : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  func.return
}
// CHECK: nn.gather: indices must be integers, got tensor<4xf32>

// -----

// gather: axis
func.func @gather_axis(%m23: tensor<2x3xf32>, %i4: tensor<4xi64>) {
  %0 = "nn.gather"(%m23, %i4) <{axis = 2 : i64}> : (tensor<2x3xf32>, tensor<4xi64>) -> tensor<2x4xf32>
  func.return
}
// CHECK: nn.gather: axis 2 is out of range for rank 2
