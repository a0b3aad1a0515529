// RUN: nnjit-opt %s -p "web-plan-buffers{report=true}" 2>&1 | filecheck %s

// Slots are reused once their last reader has run; a dispatch never writes a slot it reads; a
// reshape in @main extends its operand's lifetime; returned values keep their slot.

builtin.module {
  web.kernel @k(%0: tensor<64xf32>) -> tensor<64xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
    %1 = nn.exp %0 : tensor<64xf32>
    web.yield %1 : tensor<64xf32>
  }
  web.kernel @small(%0: tensor<8x8xf32>) -> tensor<8x8xf32> attributes {template = "elementwise", schedule = #web.schedule<workgroup = [64, 1, 1], tile = [0, 0, 0], thread = [1, 1], vector = 1, unroll = 1, shared = false>} {
    %1 = nn.neg %0 : tensor<8x8xf32>
    web.yield %1 : tensor<8x8xf32>
  }
  func.func @chain(%x: tensor<64xf32>) -> tensor<64xf32> {
    %a = web.dispatch @k(%x) : (tensor<64xf32>) -> tensor<64xf32>
    %b = web.dispatch @k(%a) : (tensor<64xf32>) -> tensor<64xf32>
    %c = web.dispatch @k(%b) : (tensor<64xf32>) -> tensor<64xf32>
    %v = nn.reshape %c : tensor<64xf32> -> tensor<8x8xf32>
    %d = web.dispatch @small(%v) : (tensor<8x8xf32>) -> tensor<8x8xf32>
    %e = nn.reshape %d : tensor<8x8xf32> -> tensor<64xf32>
    %f = web.dispatch @k(%e) : (tensor<64xf32>) -> tensor<64xf32>
    func.return %f : tensor<64xf32>
  }
}
// CHECK:       web-plan-buffers: @chain: peak 512 bytes in 2 slots vs naive 1280 bytes (60% saved)
// CHECK-LABEL: func.func @chain(
// CHECK-SAME:    attributes {web.slot_bytes = array<i64: 256, 256>, web.peak_bytes = 512 : i64, web.naive_bytes = 1280 : i64}
// CHECK-NEXT:    %a = web.dispatch @k(%x) {slot = 0 : i64}
// CHECK-NEXT:    %b = web.dispatch @k(%a) {slot = 1 : i64}
// CHECK-NEXT:    %c = web.dispatch @k(%b) {slot = 0 : i64}
// CHECK-NEXT:    %v = nn.reshape %c
// CHECK-NEXT:    %d = web.dispatch @small(%v) {slot = 1 : i64}
// CHECK-NEXT:    %e = nn.reshape %d
// CHECK-NEXT:    %f = web.dispatch @k(%e) {slot = 0 : i64}
