import matplotlib.pyplot as plt

plt.plot([3, 2, 1.5, 1.2, 1.1])
plt.title("loss")
plt.show()
print("shown")
