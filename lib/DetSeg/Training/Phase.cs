namespace DetSeg.Training;

/// <summary>The phases of training, as the course's <c>Phase</c> enum.</summary>
/// <remarks>Only <see cref="Training"/> enables gradients, puts the model in train mode and steps the optimizer.</remarks>
public enum Phase
{
    /// <summary>Gradients on, <c>model.train()</c>, optimizer steps.</summary>
    Training,
    /// <summary>No gradients, <c>model.eval()</c>; drives model selection and early stopping.</summary>
    Validation,
    /// <summary>No gradients, <c>model.eval()</c>; for the final report only.</summary>
    Testing,
}
