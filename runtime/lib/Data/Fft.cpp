//===- Fft.cpp - power spectra through FFTW3 ------------------------------===//
//
// FFTW's planner is not thread-safe, its execute functions are: plans are
// made and destroyed under one lock, and each PowerSpectrum owns its plan
// and buffers, so several decoder threads can each run their own.
//
//===----------------------------------------------------------------------===//

#include "Codecs.h"

#include <fftw3.h>

#include <mutex>

using namespace mllm::runtime::data;

namespace {

std::mutex &plannerLock() {
  static std::mutex lock;
  return lock;
}

class FftwPower final : public detail::PowerSpectrum {
public:
  explicit FftwPower(int64_t n) : n(n) {
    std::lock_guard<std::mutex> hold(plannerLock());
    in = fftw_alloc_real(static_cast<size_t>(n));
    out = fftw_alloc_complex(static_cast<size_t>(n / 2 + 1));
    plan = fftw_plan_dft_r2c_1d(static_cast<int>(n), in, out, FFTW_ESTIMATE);
  }
  ~FftwPower() override {
    std::lock_guard<std::mutex> hold(plannerLock());
    fftw_destroy_plan(plan);
    fftw_free(in);
    fftw_free(out);
  }
  bool ok() const { return plan != nullptr; }
  void power(const double *samples, double *powers) override {
    std::copy(samples, samples + n, in);
    fftw_execute(plan);
    for (int64_t k = 0; k <= n / 2; ++k)
      powers[k] = out[k][0] * out[k][0] + out[k][1] * out[k][1];
  }

private:
  int64_t n;
  double *in = nullptr;
  fftw_complex *out = nullptr;
  fftw_plan plan = nullptr;
};

} // namespace

llvm::Expected<std::unique_ptr<detail::PowerSpectrum>>
detail::makePowerSpectrum(int64_t size) {
  auto p = std::make_unique<FftwPower>(size);
  if (!p->ok())
    return codecError("FFTW could not plan a " + llvm::Twine(size) +
                      "-point FFT");
  return std::unique_ptr<PowerSpectrum>(std::move(p));
}
