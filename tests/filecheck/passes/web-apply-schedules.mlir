// RUN: rm -f %t.sqlite* && %python %S/Inputs/make_kernel_db.py %t.sqlite %s
// RUN: nnjit-opt %s -p 'web-apply-schedules{db="%t.sqlite" device="webgpu-test"}' | filecheck %s
// RUN: nnjit-opt %s -p 'web-apply-schedules{db="%t.sqlite"}' | filecheck %s
// RUN: nnjit-opt %s -p 'web-apply-schedules{db="%t.sqlite" device="webgpu-old"}' | filecheck %s --check-prefix=OLD
// RUN: nnjit-opt %s -p 'web-apply-schedules{db="%t.absent.sqlite"}' | filecheck %s --check-prefix=NODB

// The fixture database (Inputs/make_kernel_db.py) holds each `test.tuned` schedule for device
// webgpu-test, the template default for webgpu-old. Kernels are found by signature: @same_body has
// no `test.tuned` but the body of @tuned_exp, so it gets that schedule too; @untuned keeps its own.
// The 512-thread schedule needs the device's limits, which become the module's `web.limits`.

builtin.module {
  web.kernel @tuned_exp(%0: tensor<4096xf32>) -> tensor<4096xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>, test.tuned = #web.schedule<workgroup = [512, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 4, shared = false>} {
    %1 = nn.exp %0 : tensor<4096xf32>
    web.yield %1 : tensor<4096xf32>
  }
  web.kernel @same_body(%0: tensor<4096xf32>) -> tensor<4096xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
    %x = nn.exp %0 : tensor<4096xf32>
    web.yield %x : tensor<4096xf32>
  }
  web.kernel @tuned_matmul(%0: tensor<16x32xf32>, %1: tensor<32x96xf32>) -> tensor<16x96xf32> attributes {template = "matmul", schedule = #web.schedule<workgroup = [16, 16, 1], tile = [64, 64, 8], thread = [4, 4], vector = 4, unroll = 8, shared = true>, test.tuned = #web.schedule<workgroup = [8, 4, 1], tile = [8, 16, 8], thread = [2, 2], vector = 2, unroll = 8, shared = false>} {
    %2 = nn.matmul %0, %1 : (tensor<16x32xf32>, tensor<32x96xf32>) -> tensor<16x96xf32>
    web.yield %2 : tensor<16x96xf32>
  }
  web.kernel @untuned(%0: tensor<4096xf32>) -> tensor<4096xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [128, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 2, shared = false>} {
    %1 = nn.tanh %0 : tensor<4096xf32>
    web.yield %1 : tensor<4096xf32>
  }
}

// CHECK:      builtin.module attributes {web.limits = #web.limits<invocations = 1024, workgroup = [1024, 1024, 64], storage = 32768, binding = 134217728>} {
// CHECK-LABEL:  web.kernel @tuned_exp(
// CHECK-SAME:     schedule = #web.schedule<workgroup = [512, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 4, shared = false>
// CHECK-LABEL:  web.kernel @same_body(
// CHECK-SAME:     schedule = #web.schedule<workgroup = [512, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 4, shared = false>
// CHECK-LABEL:  web.kernel @tuned_matmul(
// CHECK-SAME:     schedule = #web.schedule<workgroup = [8, 4, 1], tile = [8, 16, 8], thread = [2, 2], vector = 2, unroll = 8, shared = false>
// CHECK-LABEL:  web.kernel @untuned(
// CHECK-SAME:     schedule = #web.schedule<workgroup = [128, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 2, shared = false>

// OLD-LABEL:    web.kernel @tuned_exp(
// OLD-SAME:       schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>
// OLD-LABEL:    web.kernel @tuned_matmul(
// OLD-SAME:       schedule = #web.schedule<workgroup = [16, 16, 1], tile = [64, 64, 8], thread = [4, 4], vector = 4, unroll = 8, shared = true>

// NODB:         builtin.module {
// NODB-LABEL:   web.kernel @tuned_exp(
// NODB-SAME:      schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>
