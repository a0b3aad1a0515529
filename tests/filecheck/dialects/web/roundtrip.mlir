// RUN: NNJIT_ROUNDTRIP
// RUN: NNJIT_GENERIC_ROUNDTRIP

builtin.module attributes {web.limits = #web.limits<invocations = 256, workgroup = [256, 256, 64], storage = 16384, binding = 134217728>} {
  web.kernel @matmul_0(%a: tensor<8x64xf32>, %b: tensor<64x64xf32>, %c: tensor<64xf32>) -> tensor<8x64xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [8, 8, 1], tile = [32, 32, 8], thread = [4, 4], vector = 4, unroll = 2, shared = true>} {
    %m = nn.matmul %a, %b : (tensor<8x64xf32>, tensor<64x64xf32>) -> tensor<8x64xf32>
    %y = nn.add %m, %c : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
    web.yield %y : tensor<8x64xf32>
  }
  func.func @main(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
    %w = nn.constant dense_resource<w> : tensor<64x64xf32>
    %bias = nn.constant dense_resource<b> : tensor<64xf32>
    %r = web.dispatch @matmul_0(%x, %w, %bias) {slot = 0 : i64} : (tensor<8x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
    func.return %r : tensor<8x64xf32>
  }
}
// CHECK:      builtin.module attributes {web.limits = #web.limits<invocations = 256, workgroup = [256, 256, 64], storage = 16384, binding = 134217728>} {
// CHECK-NEXT:   web.kernel @matmul_0(%a: tensor<8x64xf32>, %b: tensor<64x64xf32>, %c: tensor<64xf32>) -> tensor<8x64xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [8, 8, 1], tile = [32, 32, 8], thread = [4, 4], vector = 4, unroll = 2, shared = true>} {
// CHECK-NEXT:     %m = nn.matmul %a, %b
// CHECK-NEXT:     %y = nn.add %m, %c
// CHECK-NEXT:     web.yield %y : tensor<8x64xf32>
// CHECK-NEXT:   }
// CHECK-NEXT:   func.func @main(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
// CHECK-NEXT:     %w = nn.constant dense_resource<w> : tensor<64x64xf32>
// CHECK-NEXT:     %bias = nn.constant dense_resource<b> : tensor<64xf32>
// CHECK-NEXT:     %r = web.dispatch @matmul_0(%x, %w, %bias) {slot = 0 : i64} : (tensor<8x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
// CHECK-NEXT:     func.return %r : tensor<8x64xf32>
