import { DurableStore } from "../src/DurableStore.js"
import { storeContract } from "./storeContract.js"

storeContract({ name: "memory", layer: () => DurableStore.layerMemory, transactional: false })
