// RUN: nnjit-opt %s -p nn-recognize-patterns | filecheck %s
// RUN: nnjit-opt %s -p canonicalize,nn-recognize-patterns | filecheck %s --check-prefix=PIPE

// Exporter-expanded GELU, LayerNorm, RMSNorm, softmax and SiLU become single nn ops; near misses
// (wrong constants, extra users, non-trailing or mismatched axes) stay as they are, or become the
// smaller op they still are. The PIPE run checks the Llama export, whose f32 -> f32 casts only
// canonicalize removes.

// GELU, exact (erf) form

func.func @gelu_erf_bart(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %sqrt2 = nn.constant dense<1.41421354> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %0 = nn.div %x, %sqrt2 : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %1 = nn.erf %0 : tensor<2x8xf32>
  %2 = nn.add %1, %one : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %3 = nn.mul %x, %2 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %y = nn.mul %3, %half : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  func.return %y : tensor<2x8xf32>
}
// CHECK-LABEL: func.func @gelu_erf_bart(
// CHECK-NEXT:    %y = nn.gelu %x : tensor<2x8xf32>
// CHECK-NEXT:    func.return %y : tensor<2x8xf32>
// CHECK-NEXT:  }

func.func @gelu_erf_half_first(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %rsqrt2 = nn.constant dense<0.707106769> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %0 = nn.mul %half, %x : (tensor<f32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %1 = nn.mul %rsqrt2, %x : (tensor<f32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %2 = nn.erf %1 : tensor<2x8xf32>
  %3 = nn.add %one, %2 : (tensor<f32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %y = nn.mul %3, %0 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  func.return %y : tensor<2x8xf32>
}
// CHECK-LABEL: func.func @gelu_erf_half_first(
// CHECK-NEXT:    %y = nn.gelu %x : tensor<2x8xf32>
// CHECK-NEXT:    func.return %y : tensor<2x8xf32>
// CHECK-NEXT:  }

func.func @gelu_erf_half_inner(%x: tensor<4xf32>) -> tensor<4xf32> {
  %sqrt2 = nn.constant dense<1.4142> : tensor<1xf32>
  %one = nn.constant dense<1.0> : tensor<1xf32>
  %half = nn.constant dense<0.5> : tensor<1xf32>
  %0 = nn.div %x, %sqrt2 : (tensor<4xf32>, tensor<1xf32>) -> tensor<4xf32>
  %1 = nn.erf %0 : tensor<4xf32>
  %2 = nn.add %1, %one : (tensor<4xf32>, tensor<1xf32>) -> tensor<4xf32>
  %3 = nn.mul %half, %2 : (tensor<1xf32>, tensor<4xf32>) -> tensor<4xf32>
  %y = nn.mul %x, %3 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @gelu_erf_half_inner(
// CHECK-NEXT:    %y = nn.gelu %x : tensor<4xf32>
// CHECK-NEXT:    func.return %y : tensor<4xf32>
// CHECK-NEXT:  }

func.func @gelu_erf_wrong_constant(%x: tensor<4xf32>) -> tensor<4xf32> {
  %sqrt2 = nn.constant dense<1.41421354> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.6> : tensor<f32>
  %0 = nn.div %x, %sqrt2 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %1 = nn.erf %0 : tensor<4xf32>
  %2 = nn.add %1, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %3 = nn.mul %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %y = nn.mul %3, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @gelu_erf_wrong_constant(
// CHECK-NEXT:    %sqrt2 = nn.constant dense<1.41421354> : tensor<f32>
// CHECK-NEXT:    %one = nn.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:    %half = nn.constant dense<6.000000e-01> : tensor<f32>
// CHECK-NEXT:    %0 = nn.div %x, %sqrt2 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %1 = nn.erf %0 : tensor<4xf32>
// CHECK-NEXT:    %2 = nn.add %1, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %3 = nn.mul %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    %y = nn.mul %3, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    func.return %y : tensor<4xf32>
// CHECK-NEXT:  }

func.func @gelu_erf_extra_user(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %sqrt2 = nn.constant dense<1.41421354> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %0 = nn.div %x, %sqrt2 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %1 = nn.erf %0 : tensor<4xf32>
  %2 = nn.add %1, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %3 = nn.mul %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %y = nn.mul %3, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  func.return %y, %1 : tensor<4xf32>, tensor<4xf32>
}
// CHECK-LABEL: func.func @gelu_erf_extra_user(
// CHECK-NEXT:    %sqrt2 = nn.constant dense<1.41421354> : tensor<f32>
// CHECK-NEXT:    %one = nn.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:    %half = nn.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:    %0 = nn.div %x, %sqrt2 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %1 = nn.erf %0 : tensor<4xf32>
// CHECK-NEXT:    %2 = nn.add %1, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %3 = nn.mul %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    %y = nn.mul %3, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    func.return %y, %1 : tensor<4xf32>, tensor<4xf32>
// CHECK-NEXT:  }

func.func @gelu_erf_other_input(%x: tensor<4xf32>, %z: tensor<4xf32>) -> tensor<4xf32> {
  %sqrt2 = nn.constant dense<1.41421354> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %half = nn.constant dense<0.5> : tensor<f32>
  %0 = nn.div %z, %sqrt2 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %1 = nn.erf %0 : tensor<4xf32>
  %2 = nn.add %1, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %3 = nn.mul %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %y = nn.mul %3, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @gelu_erf_other_input(
// CHECK-NEXT:    %sqrt2 = nn.constant dense<1.41421354> : tensor<f32>
// CHECK-NEXT:    %one = nn.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:    %half = nn.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:    %0 = nn.div %z, %sqrt2 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %1 = nn.erf %0 : tensor<4xf32>
// CHECK-NEXT:    %2 = nn.add %1, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %3 = nn.mul %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    %y = nn.mul %3, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    func.return %y : tensor<4xf32>
// CHECK-NEXT:  }

// GELU, tanh approximation

func.func @gelu_tanh_gpt2(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %half = nn.constant dense<0.5> : tensor<f32>
  %three = nn.constant dense<3.0> : tensor<f32>
  %cubic = nn.constant dense<0.0447149985> : tensor<f32>
  %scale = nn.constant dense<0.797884583> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %0 = nn.mul %x, %half : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %1 = nn.pow %x, %three : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %2 = nn.mul %1, %cubic : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %3 = nn.add %x, %2 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %4 = nn.mul %3, %scale : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %5 = nn.tanh %4 : tensor<2x8xf32>
  %6 = nn.add %5, %one : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %y = nn.mul %0, %6 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  func.return %y : tensor<2x8xf32>
}
// CHECK-LABEL: func.func @gelu_tanh_gpt2(
// CHECK-NEXT:    %y = nn.gelu %x {approximate = "tanh"} : tensor<2x8xf32>
// CHECK-NEXT:    func.return %y : tensor<2x8xf32>
// CHECK-NEXT:  }

func.func @gelu_tanh_cube_as_products(%x: tensor<4xf32>) -> tensor<4xf32> {
  %half = nn.constant dense<0.5> : tensor<f32>
  %cubic = nn.constant dense<0.044715> : tensor<f32>
  %scale = nn.constant dense<0.7978845608> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %0 = nn.mul %cubic, %x : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = nn.mul %0, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %2 = nn.mul %1, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %3 = nn.add %2, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = nn.mul %scale, %3 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %5 = nn.tanh %4 : tensor<4xf32>
  %6 = nn.add %one, %5 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %7 = nn.mul %half, %x : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %y = nn.mul %7, %6 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @gelu_tanh_cube_as_products(
// CHECK-NEXT:    %y = nn.gelu %x {approximate = "tanh"} : tensor<4xf32>
// CHECK-NEXT:    func.return %y : tensor<4xf32>
// CHECK-NEXT:  }

func.func @gelu_tanh_wrong_cubic(%x: tensor<4xf32>) -> tensor<4xf32> {
  %half = nn.constant dense<0.5> : tensor<f32>
  %three = nn.constant dense<3.0> : tensor<f32>
  %cubic = nn.constant dense<0.05> : tensor<f32>
  %scale = nn.constant dense<0.797884583> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %0 = nn.mul %x, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %1 = nn.pow %x, %three : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %2 = nn.mul %1, %cubic : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %3 = nn.add %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = nn.mul %3, %scale : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %5 = nn.tanh %4 : tensor<4xf32>
  %6 = nn.add %5, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %y = nn.mul %0, %6 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %y : tensor<4xf32>
}
// CHECK-LABEL: func.func @gelu_tanh_wrong_cubic(
// CHECK-NEXT:    %half = nn.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:    %three = nn.constant dense<3.000000e+00> : tensor<f32>
// CHECK-NEXT:    %cubic = nn.constant dense<5.000000e-02> : tensor<f32>
// CHECK-NEXT:    %scale = nn.constant dense<0.797884583> : tensor<f32>
// CHECK-NEXT:    %one = nn.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:    %0 = nn.mul %x, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %1 = nn.pow %x, %three : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %2 = nn.mul %1, %cubic : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %3 = nn.add %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    %4 = nn.mul %3, %scale : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %5 = nn.tanh %4 : tensor<4xf32>
// CHECK-NEXT:    %6 = nn.add %5, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT:    %y = nn.mul %0, %6 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    func.return %y : tensor<4xf32>
// CHECK-NEXT:  }

// LayerNorm

func.func @layer_norm_affine(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>, %b: tensor<16xf32>) -> tensor<2x8x16xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-05> : tensor<f32>
  %m = nn.reduce_mean %x {axes = array<i64: -1>} : (tensor<2x8x16xf32>) -> tensor<2x8x1xf32>
  %d = nn.sub %x, %m : (tensor<2x8x16xf32>, tensor<2x8x1xf32>) -> tensor<2x8x16xf32>
  %p = nn.pow %d, %two : (tensor<2x8x16xf32>, tensor<f32>) -> tensor<2x8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: -1>} : (tensor<2x8x16xf32>) -> tensor<2x8x1xf32>
  %a = nn.add %v, %eps : (tensor<2x8x1xf32>, tensor<f32>) -> tensor<2x8x1xf32>
  %s = nn.sqrt %a : tensor<2x8x1xf32>
  %n = nn.div %d, %s : (tensor<2x8x16xf32>, tensor<2x8x1xf32>) -> tensor<2x8x16xf32>
  %sc = nn.mul %n, %g : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %y = nn.add %b, %sc : (tensor<16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  func.return %y : tensor<2x8x16xf32>
}
// CHECK-LABEL: func.func @layer_norm_affine(
// CHECK-NEXT:    %y = nn.layer_norm %x, %g, %b {axis = -1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<2x8x16xf32>
// CHECK-NEXT:  }

func.func @layer_norm_two_axes_rsqrt(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
  %eps = nn.constant dense<1.0e-12> : tensor<f32>
  %m = nn.reduce_mean %x {axes = array<i64: 1, 2>} : (tensor<2x4x8xf32>) -> tensor<2x1x1xf32>
  %d = nn.sub %x, %m : (tensor<2x4x8xf32>, tensor<2x1x1xf32>) -> tensor<2x4x8xf32>
  %p = nn.mul %d, %d : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  %v = nn.reduce_mean %p {axes = array<i64: -2, -1>} : (tensor<2x4x8xf32>) -> tensor<2x1x1xf32>
  %a = nn.add %eps, %v : (tensor<f32>, tensor<2x1x1xf32>) -> tensor<2x1x1xf32>
  %r = nn.rsqrt %a : tensor<2x1x1xf32>
  %y = nn.mul %r, %d : (tensor<2x1x1xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  func.return %y : tensor<2x4x8xf32>
}
// CHECK-LABEL: func.func @layer_norm_two_axes_rsqrt(
// CHECK-NEXT:    %ones = nn.constant dense<1.000000e+00> : tensor<4x8xf32>
// CHECK-NEXT:    %y = nn.layer_norm %x, %ones {axis = -2 : i64, epsilon = 1.000000e-12 : f32} : (tensor<2x4x8xf32>, tensor<4x8xf32>) -> tensor<2x4x8xf32>
// CHECK-NEXT:    func.return %y : tensor<2x4x8xf32>
// CHECK-NEXT:  }

func.func @layer_norm_not_trailing(%x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-05> : tensor<f32>
  %m = nn.reduce_mean %x {axes = array<i64: 1>} : (tensor<2x8x16xf32>) -> tensor<2x1x16xf32>
  %d = nn.sub %x, %m : (tensor<2x8x16xf32>, tensor<2x1x16xf32>) -> tensor<2x8x16xf32>
  %p = nn.pow %d, %two : (tensor<2x8x16xf32>, tensor<f32>) -> tensor<2x8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: 1>} : (tensor<2x8x16xf32>) -> tensor<2x1x16xf32>
  %a = nn.add %v, %eps : (tensor<2x1x16xf32>, tensor<f32>) -> tensor<2x1x16xf32>
  %s = nn.sqrt %a : tensor<2x1x16xf32>
  %y = nn.div %d, %s : (tensor<2x8x16xf32>, tensor<2x1x16xf32>) -> tensor<2x8x16xf32>
  func.return %y : tensor<2x8x16xf32>
}
// CHECK-LABEL: func.func @layer_norm_not_trailing(
// CHECK-NEXT:    %two = nn.constant dense<2.000000e+00> : tensor<f32>
// CHECK-NEXT:    %eps = nn.constant dense<1.000000e-05> : tensor<f32>
// CHECK-NEXT:    %m = nn.reduce_mean %x {axes = array<i64: 1>} : (tensor<2x8x16xf32>) -> tensor<2x1x16xf32>
// CHECK-NEXT:    %d = nn.sub %x, %m : (tensor<2x8x16xf32>, tensor<2x1x16xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    %p = nn.pow %d, %two : (tensor<2x8x16xf32>, tensor<f32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    %v = nn.reduce_mean %p {axes = array<i64: 1>} : (tensor<2x8x16xf32>) -> tensor<2x1x16xf32>
// CHECK-NEXT:    %a = nn.add %v, %eps : (tensor<2x1x16xf32>, tensor<f32>) -> tensor<2x1x16xf32>
// CHECK-NEXT:    %s = nn.sqrt %a : tensor<2x1x16xf32>
// CHECK-NEXT:    %y = nn.div %d, %s : (tensor<2x8x16xf32>, tensor<2x1x16xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<2x8x16xf32>
// CHECK-NEXT:  }

func.func @layer_norm_centered_reused_becomes_rms_of_centered(%x: tensor<2x16xf32>) -> (tensor<2x16xf32>, tensor<2x16xf32>) {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-05> : tensor<f32>
  %m = nn.reduce_mean %x {axes = array<i64: -1>} : (tensor<2x16xf32>) -> tensor<2x1xf32>
  %d = nn.sub %x, %m : (tensor<2x16xf32>, tensor<2x1xf32>) -> tensor<2x16xf32>
  %p = nn.pow %d, %two : (tensor<2x16xf32>, tensor<f32>) -> tensor<2x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: -1>} : (tensor<2x16xf32>) -> tensor<2x1xf32>
  %a = nn.add %v, %eps : (tensor<2x1xf32>, tensor<f32>) -> tensor<2x1xf32>
  %s = nn.sqrt %a : tensor<2x1xf32>
  %y = nn.div %d, %s : (tensor<2x16xf32>, tensor<2x1xf32>) -> tensor<2x16xf32>
  func.return %y, %d : tensor<2x16xf32>, tensor<2x16xf32>
}
// CHECK-LABEL: func.func @layer_norm_centered_reused_becomes_rms_of_centered(
// CHECK-NEXT:    %m = nn.reduce_mean %x {axes = array<i64: -1>} : (tensor<2x16xf32>) -> tensor<2x1xf32>
// CHECK-NEXT:    %d = nn.sub %x, %m : (tensor<2x16xf32>, tensor<2x1xf32>) -> tensor<2x16xf32>
// CHECK-NEXT:    %ones = nn.constant dense<1.000000e+00> : tensor<16xf32>
// CHECK-NEXT:    %y = nn.rms_norm %d, %ones {axis = -1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x16xf32>, tensor<16xf32>) -> tensor<2x16xf32>
// CHECK-NEXT:    func.return %y, %d : tensor<2x16xf32>, tensor<2x16xf32>
// CHECK-NEXT:  }

func.func @layer_norm_axes_differ_becomes_rms_of_centered(%x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-05> : tensor<f32>
  %m = nn.reduce_mean %x {axes = array<i64: 1, 2>} : (tensor<2x8x16xf32>) -> tensor<2x1x1xf32>
  %d = nn.sub %x, %m : (tensor<2x8x16xf32>, tensor<2x1x1xf32>) -> tensor<2x8x16xf32>
  %p = nn.pow %d, %two : (tensor<2x8x16xf32>, tensor<f32>) -> tensor<2x8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: 2>} : (tensor<2x8x16xf32>) -> tensor<2x8x1xf32>
  %a = nn.add %v, %eps : (tensor<2x8x1xf32>, tensor<f32>) -> tensor<2x8x1xf32>
  %s = nn.sqrt %a : tensor<2x8x1xf32>
  %n = nn.div %d, %s : (tensor<2x8x16xf32>, tensor<2x8x1xf32>) -> tensor<2x8x16xf32>
  %g = nn.constant dense<2.0> : tensor<16xf32>
  %y = nn.mul %n, %g : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  func.return %y : tensor<2x8x16xf32>
}
// CHECK-LABEL: func.func @layer_norm_axes_differ_becomes_rms_of_centered(
// CHECK-NEXT:    %m = nn.reduce_mean %x {axes = array<i64: 1, 2>} : (tensor<2x8x16xf32>) -> tensor<2x1x1xf32>
// CHECK-NEXT:    %d = nn.sub %x, %m : (tensor<2x8x16xf32>, tensor<2x1x1xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    %g = nn.constant dense<2.000000e+00> : tensor<16xf32>
// CHECK-NEXT:    %y = nn.rms_norm %d, %g {axis = -1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<2x8x16xf32>
// CHECK-NEXT:  }

// RMSNorm

func.func @rms_norm_t5(%x: tensor<2x8x16xf32>, %g: tensor<16xf32>) -> tensor<2x8x16xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<9.99999997e-07> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %p = nn.pow %x, %two : (tensor<2x8x16xf32>, tensor<f32>) -> tensor<2x8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: -1>} : (tensor<2x8x16xf32>) -> tensor<2x8x1xf32>
  %a = nn.add %v, %eps : (tensor<2x8x1xf32>, tensor<f32>) -> tensor<2x8x1xf32>
  %s = nn.sqrt %a : tensor<2x8x1xf32>
  %r = nn.div %one, %s : (tensor<f32>, tensor<2x8x1xf32>) -> tensor<2x8x1xf32>
  %n = nn.mul %x, %r : (tensor<2x8x16xf32>, tensor<2x8x1xf32>) -> tensor<2x8x16xf32>
  %y = nn.mul %g, %n : (tensor<16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  func.return %y : tensor<2x8x16xf32>
}
// CHECK-LABEL: func.func @rms_norm_t5(
// CHECK-NEXT:    %y = nn.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.000000e-06 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<2x8x16xf32>
// CHECK-NEXT:  }

func.func @rms_norm_div(%x: tensor<8x16xf32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  %eps = nn.constant dense<1.0e-06> : tensor<f32>
  %p = nn.mul %x, %x : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: 1>} : (tensor<8x16xf32>) -> tensor<8x1xf32>
  %a = nn.add %v, %eps : (tensor<8x1xf32>, tensor<f32>) -> tensor<8x1xf32>
  %s = nn.sqrt %a : tensor<8x1xf32>
  %n = nn.div %x, %s : (tensor<8x16xf32>, tensor<8x1xf32>) -> tensor<8x16xf32>
  %y = nn.mul %n, %g : (tensor<8x16xf32>, tensor<16xf32>) -> tensor<8x16xf32>
  func.return %y : tensor<8x16xf32>
}
// CHECK-LABEL: func.func @rms_norm_div(
// CHECK-NEXT:    %y = nn.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.000000e-06 : f32} : (tensor<8x16xf32>, tensor<16xf32>) -> tensor<8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<8x16xf32>
// CHECK-NEXT:  }

func.func @rms_norm_reciprocal(%x: tensor<8x16xf32>, %g: tensor<16xf32>) -> tensor<8x16xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-06> : tensor<f32>
  %p = nn.pow %x, %two : (tensor<8x16xf32>, tensor<f32>) -> tensor<8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: -1>} : (tensor<8x16xf32>) -> tensor<8x1xf32>
  %a = nn.add %v, %eps : (tensor<8x1xf32>, tensor<f32>) -> tensor<8x1xf32>
  %s = nn.sqrt %a : tensor<8x1xf32>
  %r = nn.reciprocal %s : tensor<8x1xf32>
  %n = nn.mul %r, %x : (tensor<8x1xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  %y = nn.mul %n, %g : (tensor<8x16xf32>, tensor<16xf32>) -> tensor<8x16xf32>
  func.return %y : tensor<8x16xf32>
}
// CHECK-LABEL: func.func @rms_norm_reciprocal(
// CHECK-NEXT:    %y = nn.rms_norm %x, %g {axis = -1 : i64, epsilon = 1.000000e-06 : f32} : (tensor<8x16xf32>, tensor<16xf32>) -> tensor<8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<8x16xf32>
// CHECK-NEXT:  }

func.func @rms_norm_without_scale_gets_ones(%x: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-06> : tensor<f32>
  %p = nn.pow %x, %two : (tensor<8x16xf32>, tensor<f32>) -> tensor<8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: -1>} : (tensor<8x16xf32>) -> tensor<8x1xf32>
  %a = nn.add %v, %eps : (tensor<8x1xf32>, tensor<f32>) -> tensor<8x1xf32>
  %r = nn.rsqrt %a : tensor<8x1xf32>
  %y = nn.mul %x, %r : (tensor<8x16xf32>, tensor<8x1xf32>) -> tensor<8x16xf32>
  func.return %y : tensor<8x16xf32>
}
// CHECK-LABEL: func.func @rms_norm_without_scale_gets_ones(
// CHECK-NEXT:    %ones = nn.constant dense<1.000000e+00> : tensor<16xf32>
// CHECK-NEXT:    %y = nn.rms_norm %x, %ones {axis = -1 : i64, epsilon = 1.000000e-06 : f32} : (tensor<8x16xf32>, tensor<16xf32>) -> tensor<8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<8x16xf32>
// CHECK-NEXT:  }

func.func @rms_norm_scale_not_trailing_stays_a_mul(%x: tensor<8x16xf32>, %g: tensor<8x1xf32>) -> tensor<8x16xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-06> : tensor<f32>
  %p = nn.pow %x, %two : (tensor<8x16xf32>, tensor<f32>) -> tensor<8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: -1>} : (tensor<8x16xf32>) -> tensor<8x1xf32>
  %a = nn.add %v, %eps : (tensor<8x1xf32>, tensor<f32>) -> tensor<8x1xf32>
  %r = nn.rsqrt %a : tensor<8x1xf32>
  %n = nn.mul %x, %r : (tensor<8x16xf32>, tensor<8x1xf32>) -> tensor<8x16xf32>
  %y = nn.mul %n, %g : (tensor<8x16xf32>, tensor<8x1xf32>) -> tensor<8x16xf32>
  func.return %y : tensor<8x16xf32>
}
// CHECK-LABEL: func.func @rms_norm_scale_not_trailing_stays_a_mul(
// CHECK-NEXT:    %ones = nn.constant dense<1.000000e+00> : tensor<16xf32>
// CHECK-NEXT:    %n = nn.rms_norm %x, %ones {axis = -1 : i64, epsilon = 1.000000e-06 : f32} : (tensor<8x16xf32>, tensor<16xf32>) -> tensor<8x16xf32>
// CHECK-NEXT:    %y = nn.mul %n, %g : (tensor<8x16xf32>, tensor<8x1xf32>) -> tensor<8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<8x16xf32>
// CHECK-NEXT:  }

func.func @rms_norm_llama(%x: tensor<1x8x64xf32>, %w: tensor<64xf32>) -> tensor<1x8x64xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<9.99999974e-06> : tensor<f32>
  %one = nn.constant dense<1.0> : tensor<f32>
  %c = nn.cast %x : tensor<1x8x64xf32> -> tensor<1x8x64xf32>
  %p = nn.pow %c, %two : (tensor<1x8x64xf32>, tensor<f32>) -> tensor<1x8x64xf32>
  %v = nn.reduce_mean %p {axes = array<i64: -1>} : (tensor<1x8x64xf32>) -> tensor<1x8x1xf32>
  %a = nn.add %v, %eps : (tensor<1x8x1xf32>, tensor<f32>) -> tensor<1x8x1xf32>
  %s = nn.sqrt %a : tensor<1x8x1xf32>
  %r = nn.div %one, %s : (tensor<f32>, tensor<1x8x1xf32>) -> tensor<1x8x1xf32>
  %n = nn.mul %c, %r : (tensor<1x8x64xf32>, tensor<1x8x1xf32>) -> tensor<1x8x64xf32>
  %n32 = nn.cast %n : tensor<1x8x64xf32> -> tensor<1x8x64xf32>
  %y = nn.mul %w, %n32 : (tensor<64xf32>, tensor<1x8x64xf32>) -> tensor<1x8x64xf32>
  func.return %y : tensor<1x8x64xf32>
}
// CHECK-LABEL: func.func @rms_norm_llama(
// CHECK-NEXT:    %c = nn.cast %x : tensor<1x8x64xf32> -> tensor<1x8x64xf32>
// CHECK-NEXT:    %ones = nn.constant dense<1.000000e+00> : tensor<64xf32>
// CHECK-NEXT:    %n = nn.rms_norm %c, %ones {axis = -1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<1x8x64xf32>, tensor<64xf32>) -> tensor<1x8x64xf32>
// CHECK-NEXT:    %n32 = nn.cast %n : tensor<1x8x64xf32> -> tensor<1x8x64xf32>
// CHECK-NEXT:    %y = nn.mul %w, %n32 : (tensor<64xf32>, tensor<1x8x64xf32>) -> tensor<1x8x64xf32>
// CHECK-NEXT:    func.return %y : tensor<1x8x64xf32>
// CHECK-NEXT:  }
// PIPE-LABEL: func.func @rms_norm_llama(
// PIPE-NEXT:    %y = nn.rms_norm %x, %w {axis = -1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<1x8x64xf32>, tensor<64xf32>) -> tensor<1x8x64xf32>
// PIPE-NEXT:    func.return %y : tensor<1x8x64xf32>
// PIPE-NEXT:  }

func.func @rms_norm_square_of_other(%x: tensor<8x16xf32>, %z: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-06> : tensor<f32>
  %p = nn.pow %z, %two : (tensor<8x16xf32>, tensor<f32>) -> tensor<8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: -1>} : (tensor<8x16xf32>) -> tensor<8x1xf32>
  %a = nn.add %v, %eps : (tensor<8x1xf32>, tensor<f32>) -> tensor<8x1xf32>
  %s = nn.sqrt %a : tensor<8x1xf32>
  %y = nn.div %x, %s : (tensor<8x16xf32>, tensor<8x1xf32>) -> tensor<8x16xf32>
  func.return %y : tensor<8x16xf32>
}
// CHECK-LABEL: func.func @rms_norm_square_of_other(
// CHECK-NEXT:    %two = nn.constant dense<2.000000e+00> : tensor<f32>
// CHECK-NEXT:    %eps = nn.constant dense<1.000000e-06> : tensor<f32>
// CHECK-NEXT:    %p = nn.pow %z, %two : (tensor<8x16xf32>, tensor<f32>) -> tensor<8x16xf32>
// CHECK-NEXT:    %v = nn.reduce_mean %p {axes = array<i64: -1>} : (tensor<8x16xf32>) -> tensor<8x1xf32>
// CHECK-NEXT:    %a = nn.add %v, %eps : (tensor<8x1xf32>, tensor<f32>) -> tensor<8x1xf32>
// CHECK-NEXT:    %s = nn.sqrt %a : tensor<8x1xf32>
// CHECK-NEXT:    %y = nn.div %x, %s : (tensor<8x16xf32>, tensor<8x1xf32>) -> tensor<8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<8x16xf32>
// CHECK-NEXT:  }

func.func @rms_norm_not_trailing(%x: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %two = nn.constant dense<2.0> : tensor<f32>
  %eps = nn.constant dense<1.0e-06> : tensor<f32>
  %p = nn.pow %x, %two : (tensor<8x16xf32>, tensor<f32>) -> tensor<8x16xf32>
  %v = nn.reduce_mean %p {axes = array<i64: 0>} : (tensor<8x16xf32>) -> tensor<1x16xf32>
  %a = nn.add %v, %eps : (tensor<1x16xf32>, tensor<f32>) -> tensor<1x16xf32>
  %s = nn.sqrt %a : tensor<1x16xf32>
  %y = nn.div %x, %s : (tensor<8x16xf32>, tensor<1x16xf32>) -> tensor<8x16xf32>
  func.return %y : tensor<8x16xf32>
}
// CHECK-LABEL: func.func @rms_norm_not_trailing(
// CHECK-NEXT:    %two = nn.constant dense<2.000000e+00> : tensor<f32>
// CHECK-NEXT:    %eps = nn.constant dense<1.000000e-06> : tensor<f32>
// CHECK-NEXT:    %p = nn.pow %x, %two : (tensor<8x16xf32>, tensor<f32>) -> tensor<8x16xf32>
// CHECK-NEXT:    %v = nn.reduce_mean %p {axes = array<i64: 0>} : (tensor<8x16xf32>) -> tensor<1x16xf32>
// CHECK-NEXT:    %a = nn.add %v, %eps : (tensor<1x16xf32>, tensor<f32>) -> tensor<1x16xf32>
// CHECK-NEXT:    %s = nn.sqrt %a : tensor<1x16xf32>
// CHECK-NEXT:    %y = nn.div %x, %s : (tensor<8x16xf32>, tensor<1x16xf32>) -> tensor<8x16xf32>
// CHECK-NEXT:    func.return %y : tensor<8x16xf32>
// CHECK-NEXT:  }

// Softmax

func.func @softmax_last(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
  %m = nn.reduce_max %x {axes = array<i64: -1>} : (tensor<2x4x8xf32>) -> tensor<2x4x1xf32>
  %d = nn.sub %x, %m : (tensor<2x4x8xf32>, tensor<2x4x1xf32>) -> tensor<2x4x8xf32>
  %e = nn.exp %d : tensor<2x4x8xf32>
  %s = nn.reduce_sum %e {axes = array<i64: 2>} : (tensor<2x4x8xf32>) -> tensor<2x4x1xf32>
  %y = nn.div %e, %s : (tensor<2x4x8xf32>, tensor<2x4x1xf32>) -> tensor<2x4x8xf32>
  func.return %y : tensor<2x4x8xf32>
}
// CHECK-LABEL: func.func @softmax_last(
// CHECK-NEXT:    %y = nn.softmax %x {axis = -1 : i64} : tensor<2x4x8xf32>
// CHECK-NEXT:    func.return %y : tensor<2x4x8xf32>
// CHECK-NEXT:  }

func.func @softmax_middle(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
  %m = nn.reduce_max %x {axes = array<i64: 1>} : (tensor<2x4x8xf32>) -> tensor<2x1x8xf32>
  %d = nn.sub %x, %m : (tensor<2x4x8xf32>, tensor<2x1x8xf32>) -> tensor<2x4x8xf32>
  %e = nn.exp %d : tensor<2x4x8xf32>
  %s = nn.reduce_sum %e {axes = array<i64: 1>} : (tensor<2x4x8xf32>) -> tensor<2x1x8xf32>
  %y = nn.div %e, %s : (tensor<2x4x8xf32>, tensor<2x1x8xf32>) -> tensor<2x4x8xf32>
  func.return %y : tensor<2x4x8xf32>
}
// CHECK-LABEL: func.func @softmax_middle(
// CHECK-NEXT:    %y = nn.softmax %x {axis = 1 : i64} : tensor<2x4x8xf32>
// CHECK-NEXT:    func.return %y : tensor<2x4x8xf32>
// CHECK-NEXT:  }

func.func @softmax_axes_differ(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %m = nn.reduce_max %x {axes = array<i64: 0>} : (tensor<4x8xf32>) -> tensor<1x8xf32>
  %d = nn.sub %x, %m : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
  %e = nn.exp %d : tensor<4x8xf32>
  %s = nn.reduce_sum %e {axes = array<i64: 1>} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  %y = nn.div %e, %s : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  func.return %y : tensor<4x8xf32>
}
// CHECK-LABEL: func.func @softmax_axes_differ(
// CHECK-NEXT:    %m = nn.reduce_max %x {axes = array<i64: 0>} : (tensor<4x8xf32>) -> tensor<1x8xf32>
// CHECK-NEXT:    %d = nn.sub %x, %m : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>
// CHECK-NEXT:    %e = nn.exp %d : tensor<4x8xf32>
// CHECK-NEXT:    %s = nn.reduce_sum %e {axes = array<i64: 1>} : (tensor<4x8xf32>) -> tensor<4x1xf32>
// CHECK-NEXT:    %y = nn.div %e, %s : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
// CHECK-NEXT:    func.return %y : tensor<4x8xf32>
// CHECK-NEXT:  }

func.func @softmax_exp_reused(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %m = nn.reduce_max %x {axes = array<i64: -1>} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  %d = nn.sub %x, %m : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %e = nn.exp %d : tensor<4x8xf32>
  %s = nn.reduce_sum %e {axes = array<i64: -1>} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  %y = nn.div %e, %s : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  func.return %y, %e : tensor<4x8xf32>, tensor<4x8xf32>
}
// CHECK-LABEL: func.func @softmax_exp_reused(
// CHECK-NEXT:    %m = nn.reduce_max %x {axes = array<i64: -1>} : (tensor<4x8xf32>) -> tensor<4x1xf32>
// CHECK-NEXT:    %d = nn.sub %x, %m : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
// CHECK-NEXT:    %e = nn.exp %d : tensor<4x8xf32>
// CHECK-NEXT:    %s = nn.reduce_sum %e {axes = array<i64: -1>} : (tensor<4x8xf32>) -> tensor<4x1xf32>
// CHECK-NEXT:    %y = nn.div %e, %s : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
// CHECK-NEXT:    func.return %y, %e : tensor<4x8xf32>, tensor<4x8xf32>
// CHECK-NEXT:  }

// SiLU

func.func @silu(%x: tensor<4xf32>, %z: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %s = nn.sigmoid %x : tensor<4xf32>
  %y = nn.mul %x, %s : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %t = nn.sigmoid %z : tensor<4xf32>
  %w = nn.mul %t, %z : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %y, %w : tensor<4xf32>, tensor<4xf32>
}
// CHECK-LABEL: func.func @silu(
// CHECK-NEXT:    %y = nn.silu %x : tensor<4xf32>
// CHECK-NEXT:    %w = nn.silu %z : tensor<4xf32>
// CHECK-NEXT:    func.return %y, %w : tensor<4xf32>, tensor<4xf32>
// CHECK-NEXT:  }

func.func @silu_kept(%x: tensor<4xf32>, %z: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %s = nn.sigmoid %x : tensor<4xf32>
  %y = nn.mul %z, %s : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %t = nn.sigmoid %z : tensor<4xf32>
  %w = nn.mul %z, %t : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return %y, %w, %t : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}
// CHECK-LABEL: func.func @silu_kept(
// CHECK-NEXT:    %s = nn.sigmoid %x : tensor<4xf32>
// CHECK-NEXT:    %y = nn.mul %z, %s : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    %t = nn.sigmoid %z : tensor<4xf32>
// CHECK-NEXT:    %w = nn.mul %z, %t : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT:    func.return %y, %w, %t : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
// CHECK-NEXT:  }
