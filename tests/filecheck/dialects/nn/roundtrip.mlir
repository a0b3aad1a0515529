// RUN: nnjit-opt %s | nnjit-opt | filecheck %s
// RUN: nnjit-opt %s --print-op-generic | nnjit-opt | filecheck %s

// Every nn op prints in its custom form and parses back to the same text.

func.func @constants() -> (tensor<2xi64>, tensor<4x4xf32>, tensor<f32>) {
  %c = nn.constant dense<[1, 2]> : tensor<2xi64>
  %w = nn.constant dense_resource<w0> : tensor<4x4xf32>
  %s = nn.constant dense<5.000000e-01> : tensor<f32> {note = "scalar"}
  func.return %c, %w, %s : tensor<2xi64>, tensor<4x4xf32>, tensor<f32>
}
// CHECK-LABEL: func.func @constants(
// CHECK-NEXT:    %c = nn.constant dense<[1, 2]> : tensor<2xi64>
// CHECK-NEXT:    %w = nn.constant dense_resource<w0> : tensor<4x4xf32>
// CHECK-NEXT:    %s = nn.constant dense<5.000000e-01> : tensor<f32> {note = "scalar"}
// CHECK-NEXT:    func.return %c, %w, %s : tensor<2xi64>, tensor<4x4xf32>, tensor<f32>

func.func @binary(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %p: tensor<2x3xi1>, %q: tensor<2x3xi1>, %i: tensor<2x3xi64>) {
  %0 = nn.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = nn.sub %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %2 = nn.mul %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %3 = nn.div %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %4 = nn.pow %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %5 = nn.max %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %6 = nn.min %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %7 = nn.mod %i, %i : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
  %8 = nn.and %p, %q : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
  %9 = nn.or %p, %q : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
  %10 = nn.xor %p, %q : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
  %11 = nn.equal %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %12 = nn.less %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %13 = nn.less_equal %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %14 = nn.greater %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %15 = nn.greater_equal %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %16 = nn.where %p, %a, %b : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return
}
// CHECK-LABEL: func.func @binary(
// CHECK-NEXT:    %0 = nn.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %1 = nn.sub %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %2 = nn.mul %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %3 = nn.div %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %4 = nn.pow %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %5 = nn.max %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %6 = nn.min %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    %7 = nn.mod %i, %i : (tensor<2x3xi64>, tensor<2x3xi64>) -> tensor<2x3xi64>
// CHECK-NEXT:    %8 = nn.and %p, %q : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
// CHECK-NEXT:    %9 = nn.or %p, %q : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
// CHECK-NEXT:    %10 = nn.xor %p, %q : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
// CHECK-NEXT:    %11 = nn.equal %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %12 = nn.less %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %13 = nn.less_equal %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %14 = nn.greater %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %15 = nn.greater_equal %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
// CHECK-NEXT:    %16 = nn.where %p, %a, %b : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT:    func.return

func.func @unary(%x: tensor<4xf32>, %p: tensor<4xi1>) {
  %0 = nn.exp %x : tensor<4xf32>
  %1 = nn.log %x : tensor<4xf32>
  %2 = nn.sqrt %x : tensor<4xf32>
  %3 = nn.rsqrt %x : tensor<4xf32>
  %4 = nn.tanh %x : tensor<4xf32>
  %5 = nn.erf %x : tensor<4xf32>
  %6 = nn.sigmoid %x : tensor<4xf32>
  %7 = nn.silu %x : tensor<4xf32>
  %8 = nn.relu %x : tensor<4xf32>
  %9 = nn.neg %x : tensor<4xf32>
  %10 = nn.reciprocal %x : tensor<4xf32>
  %11 = nn.abs %x : tensor<4xf32>
  %12 = nn.sin %x : tensor<4xf32>
  %13 = nn.cos %x : tensor<4xf32>
  %14 = nn.floor %x : tensor<4xf32>
  %15 = nn.ceil %x : tensor<4xf32>
  %16 = nn.round %x : tensor<4xf32>
  %17 = nn.sign %x : tensor<4xf32>
  %18 = nn.not %p : tensor<4xi1>
  %19 = nn.gelu %x : tensor<4xf32>
  %20 = nn.gelu %x {approximate = "tanh"} : tensor<4xf32>
  %21 = nn.leaky_relu %x {alpha = 0.01 : f32} : tensor<4xf32>
  %22 = nn.clip %x {min = 0.0 : f32, max = 6.0 : f32} : tensor<4xf32>
  %23 = nn.clip %x {max = 6.0 : f32} : tensor<4xf32>
  %24 = nn.cast %x : tensor<4xf32> -> tensor<4xf16>
  func.return
}
// CHECK-LABEL: func.func @unary(
// CHECK-NEXT:    %0 = nn.exp %x : tensor<4xf32>
// CHECK-NEXT:    %1 = nn.log %x : tensor<4xf32>
// CHECK-NEXT:    %2 = nn.sqrt %x : tensor<4xf32>
// CHECK-NEXT:    %3 = nn.rsqrt %x : tensor<4xf32>
// CHECK-NEXT:    %4 = nn.tanh %x : tensor<4xf32>
// CHECK-NEXT:    %5 = nn.erf %x : tensor<4xf32>
// CHECK-NEXT:    %6 = nn.sigmoid %x : tensor<4xf32>
// CHECK-NEXT:    %7 = nn.silu %x : tensor<4xf32>
// CHECK-NEXT:    %8 = nn.relu %x : tensor<4xf32>
// CHECK-NEXT:    %9 = nn.neg %x : tensor<4xf32>
// CHECK-NEXT:    %10 = nn.reciprocal %x : tensor<4xf32>
// CHECK-NEXT:    %11 = nn.abs %x : tensor<4xf32>
// CHECK-NEXT:    %12 = nn.sin %x : tensor<4xf32>
// CHECK-NEXT:    %13 = nn.cos %x : tensor<4xf32>
// CHECK-NEXT:    %14 = nn.floor %x : tensor<4xf32>
// CHECK-NEXT:    %15 = nn.ceil %x : tensor<4xf32>
// CHECK-NEXT:    %16 = nn.round %x : tensor<4xf32>
// CHECK-NEXT:    %17 = nn.sign %x : tensor<4xf32>
// CHECK-NEXT:    %18 = nn.not %p : tensor<4xi1>
// CHECK-NEXT:    %19 = nn.gelu %x : tensor<4xf32>
// CHECK-NEXT:    %20 = nn.gelu %x {approximate = "tanh"} : tensor<4xf32>
// CHECK-NEXT:    %21 = nn.leaky_relu %x {alpha = 1.000000e-02 : f32} : tensor<4xf32>
// CHECK-NEXT:    %22 = nn.clip %x {min = 0.000000e+00 : f32, max = 6.000000e+00 : f32} : tensor<4xf32>
// CHECK-NEXT:    %23 = nn.clip %x {max = 6.000000e+00 : f32} : tensor<4xf32>
// CHECK-NEXT:    %24 = nn.cast %x : tensor<4xf32> -> tensor<4xf16>
// CHECK-NEXT:    func.return

func.func @contractions(%a: tensor<2x8x16xf32>, %b: tensor<16x4xf32>, %m: tensor<8x16xf32>, %n: tensor<4x16xf32>, %c: tensor<4xf32>, %img: tensor<1x3x8x8xf32>, %k: tensor<6x3x3x3xf32>, %kb: tensor<6xf32>) {
  %0 = nn.matmul %a, %b : (tensor<2x8x16xf32>, tensor<16x4xf32>) -> tensor<2x8x4xf32>
  %1 = nn.gemm %m, %n, %c {trans_b, alpha = 2.0 : f32} : (tensor<8x16xf32>, tensor<4x16xf32>, tensor<4xf32>) -> tensor<8x4xf32>
  %2 = nn.gemm %m, %b : (tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x4xf32>
  %3 = nn.conv2d %img, %k, %kb {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<6x3x3x3xf32>, tensor<6xf32>) -> tensor<1x6x8x8xf32>
  %4 = nn.conv2d %img, %k {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<6x3x3x3xf32>) -> tensor<1x6x3x3xf32>
  %5 = nn.max_pool2d %img {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
  %6 = nn.avg_pool2d %img {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, count_include_pad} : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  func.return
}
// CHECK-LABEL: func.func @contractions(
// CHECK-NEXT:    %0 = nn.matmul %a, %b : (tensor<2x8x16xf32>, tensor<16x4xf32>) -> tensor<2x8x4xf32>
// CHECK-NEXT:    %1 = nn.gemm %m, %n, %c {trans_b, alpha = 2.000000e+00 : f32} : (tensor<8x16xf32>, tensor<4x16xf32>, tensor<4xf32>) -> tensor<8x4xf32>
// CHECK-NEXT:    %2 = nn.gemm %m, %b : (tensor<8x16xf32>, tensor<16x4xf32>) -> tensor<8x4xf32>
// CHECK-NEXT:    %3 = nn.conv2d %img, %k, %kb {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<6x3x3x3xf32>, tensor<6xf32>) -> tensor<1x6x8x8xf32>
// CHECK-NEXT:    %4 = nn.conv2d %img, %k {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<6x3x3x3xf32>) -> tensor<1x6x3x3xf32>
// CHECK-NEXT:    %5 = nn.max_pool2d %img {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
// CHECK-NEXT:    %6 = nn.avg_pool2d %img {kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, count_include_pad} : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
// CHECK-NEXT:    func.return

func.func @norms(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %b: tensor<16xf32>) {
  %0 = nn.softmax %x {axis = -1 : i64} : tensor<2x8x16xf32>
  %1 = nn.log_softmax %x {axis = 1 : i64} : tensor<2x8x16xf32>
  %2 = nn.cumsum %x {axis = 2 : i64, exclusive, reverse} : tensor<2x8x16xf32>
  %3 = nn.layer_norm %x, %g, %b {axis = -1 : i64, epsilon = 1.0e-05 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %4 = nn.layer_norm %x, %g {axis = -1 : i64, epsilon = 1.0e-05 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %5 = nn.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.0e-06 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %6 = nn.reduce_sum %x {axes = array<i64: -1>} : (tensor<2x8x16xf32>) -> tensor<2x8x1xf32>
  %7 = nn.reduce_mean %x {axes = array<i64: 1, 2>} : (tensor<2x8x16xf32>) -> tensor<2xf32>
  %8 = nn.reduce_max %x {axes = array<i64: 0>} : (tensor<2x8x16xf32>) -> tensor<1x8x16xf32>
  %9 = nn.reduce_min %x {axes = array<i64: 2>} : (tensor<2x8x16xf32>) -> tensor<2x8xf32>
  %10 = nn.reduce_prod %x {axes = array<i64: -2>} : (tensor<2x8x16xf32>) -> tensor<2x1x16xf32>
  func.return
}
// CHECK-LABEL: func.func @norms(
// CHECK-NEXT:    %0 = nn.softmax %x {axis = -1 : i64} : tensor<2x8x16xf32>
// CHECK-NEXT:    %1 = nn.log_softmax %x {axis = 1 : i64} : tensor<2x8x16xf32>
// CHECK-NEXT:    %2 = nn.cumsum %x {axis = 2 : i64, exclusive, reverse} : tensor<2x8x16xf32>
// CHECK-NEXT:    %3 = nn.layer_norm %x, %g, %b {axis = -1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    %4 = nn.layer_norm %x, %g {axis = -1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    %5 = nn.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.000000e-06 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    %6 = nn.reduce_sum %x {axes = array<i64: -1>} : (tensor<2x8x16xf32>) -> tensor<2x8x1xf32>
// CHECK-NEXT:    %7 = nn.reduce_mean %x {axes = array<i64: 1, 2>} : (tensor<2x8x16xf32>) -> tensor<2xf32>
// CHECK-NEXT:    %8 = nn.reduce_max %x {axes = array<i64: 0>} : (tensor<2x8x16xf32>) -> tensor<1x8x16xf32>
// CHECK-NEXT:    %9 = nn.reduce_min %x {axes = array<i64: 2>} : (tensor<2x8x16xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:    %10 = nn.reduce_prod %x {axes = array<i64: -2>} : (tensor<2x8x16xf32>) -> tensor<2x1x16xf32>
// CHECK-NEXT:    func.return

func.func @data_movement(%x: tensor<2x3x4xf32>, %y: tensor<2x5x4xf32>, %idx: tensor<6xi64>, %v: tensor<1x4xf32>) {
  %0 = nn.transpose %x {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %1 = nn.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
  %2 = nn.expand %v : tensor<1x4xf32> -> tensor<3x4xf32>
  %3 = nn.concat %x, %y {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x8x4xf32>
  %4 = nn.slice %x {starts = array<i64: 0, 1, 3>, ends = array<i64: 2, 3, -5>, steps = array<i64: 1, 1, -2>} : (tensor<2x3x4xf32>) -> tensor<2x2x2xf32>
  %5 = nn.gather %x, %idx {axis = 2 : i64} : (tensor<2x3x4xf32>, tensor<6xi64>) -> tensor<2x3x6xf32>
  func.return
}
// CHECK-LABEL: func.func @data_movement(
// CHECK-NEXT:    %0 = nn.transpose %x {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
// CHECK-NEXT:    %1 = nn.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
// CHECK-NEXT:    %2 = nn.expand %v : tensor<1x4xf32> -> tensor<3x4xf32>
// CHECK-NEXT:    %3 = nn.concat %x, %y {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>) -> tensor<2x8x4xf32>
// CHECK-NEXT:    %4 = nn.slice %x {starts = array<i64: 0, 1, 3>, ends = array<i64: 2, 3, -5>, steps = array<i64: 1, 1, -2>} : (tensor<2x3x4xf32>) -> tensor<2x2x2xf32>
// CHECK-NEXT:    %5 = nn.gather %x, %idx {axis = 2 : i64} : (tensor<2x3x4xf32>, tensor<6xi64>) -> tensor<2x3x6xf32>
// CHECK-NEXT:    func.return
