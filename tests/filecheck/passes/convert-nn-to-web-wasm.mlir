// RUN: nnjit-opt %s -p "convert-nn-to-web{target=wasm}" | filecheck %s
// RUN: nnjit-opt %s -p "convert-nn-to-web{target=wasm},web-plan-buffers" -t nnjit-wat | filecheck %s --check-prefix=WAT

// `{target=wasm}` marks the module for the Wasm target (kernels verify under Wasm rules: one thread,
// a matmul tile a multiple of its register block) and starts every kernel from the Wasm defaults.

func.func @main(%x: tensor<8x32xf32>, %w: tensor<32x32xf32>, %b: tensor<32xf32>) -> tensor<8x32xf32> {
  %m = nn.matmul %x, %w : (tensor<8x32xf32>, tensor<32x32xf32>) -> tensor<8x32xf32>
  %a = nn.add %m, %b : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %p = nn.softmax %a {axis = -1 : i64} : tensor<8x32xf32>
  func.return %p : tensor<8x32xf32>
}
// CHECK:       builtin.module attributes {web.target = "wasm"} {
// CHECK-NEXT:    web.kernel @matmul_0(%0: tensor<8x32xf32>, %1: tensor<32x32xf32>, %2: tensor<32xf32>) -> tensor<8x32xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [1, 1, 1], tile = [64, 64, 256], thread = [8, 8], vector = 4, unroll = 4, shared = false>} {
// CHECK:         web.kernel @softmax_0(%0: tensor<8x32xf32>) -> tensor<8x32xf32> attributes {template = "row_reduce", schedule = #web.schedule<workgroup = [1, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 4, unroll = 2, shared = false>} {
// CHECK-LABEL:   func.func @main(
// CHECK-NEXT:      %a = web.dispatch @matmul_0(%x, %w, %b)
// CHECK-NEXT:      %p = web.dispatch @softmax_0(%a)

// WAT:       ;; nnjit wasm module: 2 kernel calls, 1 pages of memory
// WAT-NEXT:  ;; relaxed-simd off: f32x4.mul + f32x4.add
// WAT-NEXT:  (memory (export "memory") 1)
// WAT:       (func $k0_matmul_0 (export "k0_matmul_0")
// WAT:       (func $k1_softmax_0 (export "k1_softmax_0")
// WAT:       (func (export "run") (param $n i32)
// WAT:             (call $k0_matmul_0)
// WAT-NEXT:        (call $k1_softmax_0)
