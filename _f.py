import time, numpy as np, sys
from nprefgen._threads import blas_threads
from nprefgen.data.grf import gaussian_random_field, power_law, field_variance
from nprefgen.metrics.field_stats import power_spectrum
from nprefgen.models.gan import conv_gan
N=32; P=power_law(5.0, 2.5)
var=field_variance(P,N)
g=gaussian_random_field(N,P,rng=0,n_fields=4000)
delta=np.exp(g-var/2)-1
y=np.log1p(delta); mu,sd=y.mean(),y.std()
X=((y-mu)/sd).reshape(len(y),-1)
steps=int(sys.argv[1]); lr=float(sys.argv[2]); noise=float(sys.argv[3]); ch=(int(sys.argv[4]),int(sys.argv[5]))
with blas_threads(1):
    gan=conv_gan((1,N,N),latent_dim=32,channels=ch,rng=0)
    t=time.process_time()
    def cb(s,g):
        if (s+1)%500==0:
            f=np.expm1(g.sample(500,rng=2).reshape(-1,N,N)*sd+mu)
            print(s+1, np.round(power_spectrum(f,n_bins=8).power/power_spectrum(delta[3000:],n_bins=8).power,2), flush=True)
    gan.fit(X[:3000],rng=1,steps=steps,batch_size=32,lr=lr,instance_noise=noise,callback=cb)
    print("cpu/step", (time.process_time()-t)/steps)
    print(power_spectrum(delta[3000:],n_bins=8).k)
    print("halves", np.round(power_spectrum(delta[3000:3500],n_bins=8).power/power_spectrum(delta[3500:],n_bins=8).power,3))
