// RUN: nnjit-opt %s --split-input-file --verify-diagnostics | filecheck %s

builtin.module attributes {web.limits = #web.limits<invocations = 64, workgroup = [64, 64, 64], storage = 4096, binding = 134217728>} {
  web.kernel @too_many_threads(%a: tensor<4xf32>) -> tensor<4xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [128, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
    %b = nn.exp %a : tensor<4xf32>
    web.yield %b : tensor<4xf32>
  }
}
// CHECK: web.kernel @too_many_threads: workgroup [128, 1, 1] exceeds the device limits (64 invocations, sizes [64, 64, 64])

// -----

builtin.module attributes {web.limits = #web.limits<invocations = 256, workgroup = [256, 256, 64], storage = 4000, binding = 134217728>} {
  web.kernel @too_much_storage(%a: tensor<64x64xf32>, %b: tensor<64x64xf32>) -> tensor<64x64xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [8, 8, 1], tile = [32, 32, 16], thread = [4, 4], vector = 1, unroll = 1, shared = true>} {
    %c = nn.matmul %a, %b : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
    web.yield %c : tensor<64x64xf32>
  }
}
// CHECK: web.kernel @too_much_storage: needs 4096 bytes of workgroup storage, the device has 4000

// -----

web.kernel @bad_tile(%a: tensor<64x64xf32>, %b: tensor<64x64xf32>) -> tensor<64x64xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [8, 8, 1], tile = [16, 32, 8], thread = [4, 4], vector = 1, unroll = 1, shared = true>} {
  %c = nn.matmul %a, %b : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
  web.yield %c : tensor<64x64xf32>
}
// CHECK: web.kernel @bad_tile: matmul tile [16, 32, 8] must equal workgroup [y, x] [8, 8] times thread tile [4, 4], with k >= 1

// -----

web.kernel @bad_template(%a: tensor<4xf32>) -> tensor<4xf32> attributes {template = "magic", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
  web.yield %a : tensor<4xf32>
}
// CHECK: web.kernel @bad_template: unknown template 'magic'

// -----

web.kernel @k(%a: tensor<4xf32>) -> tensor<4xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
  web.yield %a : tensor<4xf32>
}
func.func @wrong_types(%x: tensor<8xf32>) -> tensor<8xf32> {
  %y = web.dispatch @k(%x) : (tensor<8xf32>) -> tensor<8xf32>
  func.return %y : tensor<8xf32>
}
// CHECK: web.dispatch: types (tensor<8xf32>) -> tensor<8xf32> differ from @k's (tensor<4xf32>) -> tensor<4xf32>

// -----

func.func @missing_kernel(%x: tensor<8xf32>) -> tensor<8xf32> {
  %y = web.dispatch @nowhere(%x) : (tensor<8xf32>) -> tensor<8xf32>
  func.return %y : tensor<8xf32>
}
// CHECK: web.dispatch: '@nowhere' is not a web.kernel

// -----

web.kernel @bad_vector(%a: tensor<4xf32>) -> tensor<4xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 3, unroll = 1, shared = false>} {
  web.yield %a : tensor<4xf32>
}
// CHECK: #web.schedule has a non-positive size or a vector width other than 1, 2, 4

// -----

builtin.module attributes {web.target = "wasm"} {
  web.kernel @wasm_threads(%a: tensor<4xf32>) -> tensor<4xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
    %b = nn.exp %a : tensor<4xf32>
    web.yield %b : tensor<4xf32>
  }
}
// CHECK: web.kernel @wasm_threads: wasm kernels run one thread per call, workgroup must be [1, 1, 1]

// -----

builtin.module attributes {web.target = "wasm"} {
  web.kernel @wasm_block(%a: tensor<64x64xf32>, %b: tensor<64x64xf32>) -> tensor<64x64xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [1, 1, 1], tile = [64, 64, 64], thread = [6, 8], vector = 4, unroll = 1, shared = false>} {
    %c = nn.matmul %a, %b : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
    web.yield %c : tensor<64x64xf32>
  }
}
// CHECK: web.kernel @wasm_block: wasm matmul tile [64, 64, 64] must be a multiple of the register block [6, 8] whose n is a multiple of vector 4

// -----

builtin.module attributes {web.target = "cuda"} {
  web.kernel @unknown_target(%a: tensor<4xf32>) -> tensor<4xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [1, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
    web.yield %a : tensor<4xf32>
  }
}
// CHECK: web.kernel @unknown_target: unknown web.target 'cuda'
