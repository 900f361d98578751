import pickle
import time
from pathlib import Path

from breachminer.catalog import AttackCatalog
from models.training_data import load_training_data

t=time.perf_counter()
cat=AttackCatalog.load()
data=load_training_data(Path('../shared/data'), cat)
print('load', time.perf_counter()-t, len(data.sentences))
pickle.dump(data, open('/tmp/clf-exp/data.pkl','wb'))
